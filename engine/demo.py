"""``berth demo``: the start saga on the in-process fake runtime, audited with plain SQL.

Creates a container, makes its first start fail in networking (an injected fault), starts it
again successfully, stops it, then prints what the ``container_history`` and ``start_attempts``
views say, read with a plain ``sqlite3`` connection opened read-only.
"""

from __future__ import annotations

import pathlib
import sqlite3
import tempfile

from engine.composition import open_engine
from engine.container_config import ContainerConfig
from engine.errors import BerthError
from engine.testing import FakeHost, FakeRuntime

HISTORY = """
SELECT seq, event, from_state, to_state, coalesce(step, ''), outcome, coalesce(error, '')
FROM container_history WHERE container_name = ? ORDER BY seq
"""
ATTEMPTS = """
SELECT attempt_id, outcome, coalesce(failed_step, '-'), coalesce(error, '-'),
       coalesce(exit_code, '-'), duration_ms
FROM start_attempts WHERE container_name = ? ORDER BY attempt_id
"""


def run_demo(root: str | None) -> int:
    base = pathlib.Path(root) if root else pathlib.Path(tempfile.mkdtemp(prefix="berth-demo-"))
    host = FakeHost(str(base))
    engine, _ = open_engine(base, backend="fake", runtime=FakeRuntime(), host=host)
    name = "demo-" + base.name[-6:].replace("_", "-").lower().strip("-") or "demo"
    engine.create(ContainerConfig(image="busybox", command=("sh", "-c", "echo hi"), name=name))
    host.faults.add("acquire:network", OSError("network namespace: no space left on device"))
    try:
        engine.start(name)
    except BerthError as exc:
        print(f"first start failed as planned: {exc.error_class.value}: {exc}")
    engine.start(name)
    engine.stop(name, timeout=0)
    database = engine.saga.db.path
    engine.close()
    print(f"\ndatabase: {database}\n")
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    print(f"{'seq':>4} {'event':<17} {'from':<12} {'to':<12} {'step':<25} {'outcome':<8} error")
    for row in connection.execute(HISTORY, (name,)):
        seq, event, before, after, step, outcome, error = row
        print(f"{seq:>4} {event:<17} {before or '':<12} {after:<12} {step:<25} {outcome:<8} "
              f"{error}")
    print(f"\n{'attempt':>7} {'outcome':<10} {'failed step':<14} {'exit':>4} {'ms':>4} error")
    for attempt, outcome, step, error, code, duration in connection.execute(ATTEMPTS, (name,)):
        print(f"{attempt:>7} {outcome:<10} {step:<14} {code!s:>4} {duration!s:>4} {error}")
    connection.close()
    return 0
