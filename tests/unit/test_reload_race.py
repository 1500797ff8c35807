"""2,000 starts racing 200 reloads that flip a runtime's arguments: no start ever runs a script
that does not exist, and every attempt's recorded generation names the binary it ran."""

from __future__ import annotations

import json
import os
import pathlib
import threading

from engine.composition import open_engine
from engine.failpoint import Failpoints
from engine.reload import ConfigKeeper
from engine.runtime import TaskState
from engine.testing import FakeHost, FakeRuntime
from tests.conftest import make_config

STARTS = 2000
RELOADS = 200
WORKERS = 2


class CheckingRuntime(FakeRuntime):
    """Checks, at every create, that the binary it is told to run exists and is a script."""

    def __init__(self) -> None:
        super().__init__()
        self.ran: dict[str, str] = {}  # container id -> binary
        self.missing: list[str] = []

    def create(self, container_id: str, bundle: str, *, binary: str) -> TaskState:
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            self.missing.append(binary)
        self.ran[container_id] = binary
        return super().create(container_id, bundle, binary=binary)


def test_starts_racing_reloads(tmp_path: pathlib.Path) -> None:
    runtime = CheckingRuntime()
    engine, _ = open_engine(tmp_path, runtime=runtime, host=FakeHost(str(tmp_path)),
                            failpoints=Failpoints())
    config_file = tmp_path / "daemon.json"

    def write(flag: str) -> None:
        config_file.write_text(json.dumps({"default-runtime": "w", "runtimes": {
            "w": {"path": "/bin/true", "runtimeArgs": [flag]}}}))

    write("--first")
    keeper = ConfigKeeper(path=str(config_file), root=tmp_path, store=engine.config,
                          db=engine.saga.db, events=engine.saga.events)
    keeper.start()
    done = threading.Event()
    errors: list[BaseException] = []

    def reloads() -> None:
        try:
            for index in range(RELOADS):
                write(f"--flip-{index % 2}")
                keeper.reload()
        except BaseException as error:
            errors.append(error)
        finally:
            done.set()

    def starts(worker: int) -> None:
        try:
            for index in range(STARTS // WORKERS):
                record = engine.create(make_config(f"c{worker}-{index}"))
                engine.start(record.id)
                engine.kill(record.id)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=reloads)] + [
        threading.Thread(target=starts, args=(worker,)) for worker in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert runtime.missing == []
    with engine.saga.db.read() as reader:
        generations = {g.generation: g.runtimes for g in reader.generations()}
        attempts = [op for record in reader.containers(include_removed=True)
                    for op in reader.operations(record.id) if op.kind == "start"]
    assert len(generations) == RELOADS + 1
    assert len(attempts) == STARTS
    used = set()
    for attempt in attempts:
        assert attempt.config_generation is not None
        assert attempt.runtime_binary == generations[attempt.config_generation]["w"]
        assert runtime.ran[attempt.container_id] == attempt.runtime_binary
        used.add(attempt.config_generation)
    assert len(used) > 1  # the starts really raced the reloads
    engine.saga.db.close()
