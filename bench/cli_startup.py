#!/usr/bin/env python3
"""CLI start-up: the whole-process wall time of ``berth version`` against a running daemon.

Starts ``berth daemon`` (fake backend) on a temporary data root, then times, interleaved round
by round (A, B, C, A, B, C ...) so that a drift of the machine's speed touches all three alike:

  A  python3 -c pass            the interpreter and its site, nothing else
  B  python3 -c "import grpc"   what a grpc client pays before its first call
  C  berth version              the console script beside this interpreter: start, one call

and prints each one's median and 90th percentile, the ratios of the medians, the median of the
per-round ratios, and the target (issue 4): ``berth version`` well under 150 ms, taken as a
median of at most 100 ms (a third under) with a 90th percentile under 150 ms. The daemon is
stopped and its root removed at the end. Standard library only.

Usage: python bench/cli_startup.py [--runs 30] [--warmup 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_MS = 150.0
MEDIAN_LIMIT_MS = 100.0
CHECKOUT = pathlib.Path(__file__).resolve().parents[1]
CLI_MODULES = ("engine/cli.py", "engine/client.py", "engine/api/channel.py",
               "engine/api/connection.py", "engine/api/header_codec.py",
               "engine/api/status.py", "engine/api/stub.py")


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile, by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def timed(command: list[str], environment: dict[str, str]) -> float:
    """Milliseconds from start to exit of ``command``; it must succeed."""
    started = time.perf_counter()
    result = subprocess.run(command, env=environment, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): "
                         f"{result.stderr.decode(errors='replace').strip()}")
    return elapsed


def bytecode_is_cached(source: pathlib.Path) -> bool:
    """Whether ``source`` has a bytecode file the interpreter will use instead of compiling."""
    cached = pathlib.Path(importlib.util.cache_from_source(str(source)))
    if not cached.exists():
        return False
    header = cached.read_bytes()[:16]
    if int.from_bytes(header[4:8], "little"):  # hash-based bytecode (PEP 552): no timestamp
        return True
    stat = source.stat()
    return (int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF)


def start_daemon(root: str, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    daemon = subprocess.Popen([sys.executable, "-m", "engine", "daemon", "--backend", "fake"],
                              env=environment, cwd=CHECKOUT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not os.path.exists(f"{root}/berth.sock"):
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            raise SystemExit("the daemon did not start")
        time.sleep(0.05)
    return daemon


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed rounds (A, B, C each)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    args = parser.parse_args(argv)
    berth = os.path.join(os.path.dirname(sys.executable), "berth")
    if not os.access(berth, os.X_OK):
        raise SystemExit(f"no berth console script beside {sys.executable}: pip install -e .")
    commands = {
        "python3 -c pass": [sys.executable, "-c", "pass"],
        'python3 -c "import grpc"': [sys.executable, "-c", "import grpc"],
        "berth version": [berth, "version"],
    }
    root = tempfile.mkdtemp(prefix="berth-startup-")
    environment = {**os.environ, "BERTH_ROOT": root}
    environment.pop("BERTH_HOST", None)
    daemon = start_daemon(root, environment)
    times: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for round_number in range(args.warmup + args.runs):
            for name, command in commands.items():
                elapsed = timed(command, environment)
                if round_number >= args.warmup:
                    times[name].append(elapsed)
    finally:
        daemon.terminate()
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(root, ignore_errors=True)

    bare, grpc, cli = (times[name] for name in commands)
    print(f"{args.runs} interleaved rounds after {args.warmup} warm-up rounds, {sys.executable}")
    for name, values in times.items():
        print(f"  {name:28} median {statistics.median(values):6.1f} ms   "
              f"p90 {percentile(values, 0.9):6.1f} ms")
    for label, numerator, denominator in (("berth version / python3 -c pass", cli, bare),
                                          ("berth version / import grpc", cli, grpc),
                                          ("import grpc / python3 -c pass", grpc, bare)):
        paired = statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))
        print(f"  {label:33} {statistics.median(numerator) / statistics.median(denominator):.2f}"
              f" (median of the per-round ratios {paired:.2f})")
    uncached = [module for module in CLI_MODULES if not bytecode_is_cached(CHECKOUT / module)]
    if uncached:
        writes = ("off (PYTHONDONTWRITEBYTECODE)" if sys.flags.dont_write_bytecode
                  or os.environ.get("PYTHONDONTWRITEBYTECODE") else "on")
        print(f"  note: {len(uncached)} of the CLI's {len(CLI_MODULES)} modules have no current "
              f"bytecode (writing it: {writes}); each run compiled them")
    median, p90 = statistics.median(cli), percentile(cli, 0.9)
    met = median <= MEDIAN_LIMIT_MS and p90 < TARGET_MS
    print(f"berth version well under {TARGET_MS:.0f} ms: {'met' if met else 'NOT met'} "
          f"({median:.1f} ms median)")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
