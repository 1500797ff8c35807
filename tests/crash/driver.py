"""Runs one engine operation in its own process, as the daemon would, for the crash tests.

Usage: python driver.py ROOT ACTION CONTAINER   (ACTION: create, start, stop, rm, run)
The failpoints come from BERTH_FAILPOINTS; a ``crash`` failpoint ends this process with 137.
The fake runtime and host keep their state under ROOT/fake, so the next process sees what this
one left behind, as it would with runc and real mounts.
"""

from __future__ import annotations

import sys

from engine.composition import open_engine
from engine.container_config import ContainerConfig
from engine.errors import BerthError


def main() -> int:
    root, action, name = sys.argv[1:4]
    engine, _ = open_engine(root, backend="fake")
    try:
        if action in ("create", "run"):
            engine.create(ContainerConfig(image="busybox", command=("sleep", "1000"), name=name,
                                          mounts=("data:/data",), secrets=("token",)))
        if action in ("start", "run"):
            engine.start(name)
        elif action == "stop":
            engine.stop(name, timeout=0)
        elif action == "rm":
            engine.remove(name, force=True)
    except BerthError as exc:
        print(f"{exc.error_class.value}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.saga.db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
