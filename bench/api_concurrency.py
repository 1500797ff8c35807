#!/usr/bin/env python3
"""API throughput under concurrency: N clients creating, starting and removing containers.

Starts ``berth daemon`` (fake backend by default: this measures the engine, its journal and the
API, not runc) on a temporary root, runs the clients for the given time, prints operations per
second and every failure by status code.

Usage: python bench/api_concurrency.py [--clients 32] [--seconds 30] [--backend fake|runc]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

from engine.testing.load import run_clients


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--backend", choices=["fake", "runc"], default="fake")
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="berth-load-")
    environment = {**os.environ, "BERTH_ROOT": root}
    daemon = subprocess.Popen([sys.executable, "-m", "engine", "daemon", "--backend",
                               args.backend], env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(f"{root}/berth.sock"):
            time.sleep(0.05)
        report = run_clients(f"unix://{root}/berth.sock", clients=args.clients,
                             seconds=args.seconds)
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(root, ignore_errors=True)
    print(f"{args.clients} clients x {report.seconds:.1f} s, {args.backend} backend: "
          f"{report.operations} operations (create, start, rm -f), "
          f"{report.per_second:.0f} ops/s, {len(report.failures)} failures")
    for (code, message), count in collections.Counter(report.failures).most_common(10):
        print(f"  {count} x {code}: {message}")
    return 0 if not report.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
