#!/usr/bin/env python3
"""What the durable journal costs: start+stop cycles on the fake runtime, journal on and off.

In one run, rounds alternate between
  durable  - the engine on a SQLite file in WAL mode (synchronous=NORMAL, the default), and
  memory   - the same engine on an in-memory SQLite database with journaling off,
and print, as medians over the rounds: cycles per second for both and their ratio, engine
milliseconds per start and per stop, commits per start and per stop, and the floor: the raw
rate of single-row BEGIN IMMEDIATE/INSERT/COMMIT transactions on the same disk and settings.

Usage: python bench/journal_overhead.py [--containers N] [--rounds R] [--dir DIR] [--sync S]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from typing import Any

from engine.composition import open_engine
from engine.container_config import ContainerConfig
from engine.store import MEMORY
from engine.testing import FakeHost, FakeRuntime


def run_cycles(workdir: str, count: int, *, durable: bool, sync: str) -> dict[str, float]:
    root = tempfile.mkdtemp(dir=workdir)
    engine, _ = open_engine(root, backend="fake", runtime=FakeRuntime(), host=FakeHost(root),
                            db_path=None if durable else MEMORY, durability=sync)  # type: ignore[arg-type]
    ids = [engine.create(ContainerConfig(image="busybox", command=("true",))).id
           for _ in range(count)]
    db = engine.saga.db
    commits_before = db.commits
    began = time.perf_counter()
    for container_id in ids:
        engine.start(container_id)
    started = time.perf_counter()
    commits_started = db.commits
    for container_id in ids:
        engine.stop(container_id)
    stopped = time.perf_counter()
    result = {
        "cycles_per_s": count / (stopped - began),
        "start_ms": (started - began) / count * 1000,
        "stop_ms": (stopped - started) / count * 1000,
        "commits_per_start": (commits_started - commits_before) / count,
        "commits_per_stop": (db.commits - commits_started) / count,
    }
    db.close()
    return result


def raw_commit_rate(workdir: str, count: int, sync: str) -> float:
    path = os.path.join(tempfile.mkdtemp(dir=workdir), "floor.db")
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={sync.upper()}")
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    began = time.perf_counter()
    for index in range(count):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t (v) VALUES (?)", (f"row {index}",))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - began
    connection.close()
    return count / elapsed


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the database files go")
    parser.add_argument("--sync", default="normal", choices=["normal", "full"])
    args = parser.parse_args(argv)
    workdir = args.dir or tempfile.mkdtemp(prefix="berth-bench-")
    try:
        return report(args, workdir)
    finally:
        if args.dir is None:  # its own directory: the databases go with it
            shutil.rmtree(workdir, ignore_errors=True)


def report(args: argparse.Namespace, workdir: str) -> int:
    durable: list[dict[str, float]] = []
    memory: list[dict[str, float]] = []
    floors: list[float] = []
    for _ in range(args.rounds):  # A, B, A, B ...
        durable.append(run_cycles(workdir, args.containers, durable=True, sync=args.sync))
        memory.append(run_cycles(workdir, args.containers, durable=False, sync=args.sync))
        floors.append(raw_commit_rate(workdir, 5000, args.sync))
    table: list[tuple[str, Any, Any]] = [
        ("start+stop cycles/s", median(durable, "cycles_per_s"), median(memory, "cycles_per_s")),
        ("engine ms per start", median(durable, "start_ms"), median(memory, "start_ms")),
        ("engine ms per stop", median(durable, "stop_ms"), median(memory, "stop_ms")),
        ("commits per start", median(durable, "commits_per_start"),
         median(memory, "commits_per_start")),
        ("commits per stop", median(durable, "commits_per_stop"),
         median(memory, "commits_per_stop")),
    ]
    print(f"berth journal overhead: {args.containers} containers x {args.rounds} rounds, "
          f"fake runtime, synchronous={args.sync.upper()}, Python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version}")
    print(f"{'metric (median)':<24}{'durable':>12}{'in-memory':>12}{'ratio':>10}")
    for label, durable_value, memory_value in table:
        ratio = durable_value / memory_value if memory_value else float("nan")
        print(f"{label:<24}{durable_value:>12.3f}{memory_value:>12.3f}{ratio:>10.2f}")
    floor = statistics.median(floors)
    print(f"raw SQLite 1-row commits/s on the same disk: {floor:,.0f} "
          f"({1000 / floor:.3f} ms per commit)")
    per_start_floor = median(durable, "commits_per_start") * 1000 / floor
    print(f"floor for a start's commits alone: {per_start_floor:.3f} ms "
          f"({median(durable, 'commits_per_start'):.0f} commits)")
    cycles = median(durable, "cycles_per_s")
    start_ms = median(durable, "start_ms")
    print(f"targets: >= 500 cycles/s durable: {'met' if cycles >= 500 else 'NOT met'} "
          f"({cycles:.0f}); <= 1 ms engine time per start: "
          f"{'met' if start_ms <= 1.0 else 'NOT met'} ({start_ms:.3f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
