"""daemon.json validation (moby's messages, spec 4.1), wrapper scripts, reloads and their GC."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import stat
import subprocess
import threading

import pytest

from engine.config import (
    ConfigSnapshot,
    ConfigStore,
    build_snapshot,
    parse_config,
    wrapper_script,
    write_wrapper,
)
from engine.errors import InvalidParameter
from engine.reload import ConfigKeeper
from engine.service import Engine
from engine.store import JournalContext
from tests.conftest import make_config


@pytest.mark.parametrize(("config", "message"), [
    ({"runtimes": {"runc": {"path": "/usr/bin/runc"}}}, "runtime name 'runc' is reserved"),
    ({"runtimes": {"r": {}}}, "runtime r: either a runtimeType or a path must be configured"),
    ({"runtimes": {"r": {"runtimeArgs": ["-x"]}}},
     "runtime r: either a runtimeType or a path must be configured"),
    ({"runtimes": {"r": {"options": {"a": 1}}}},
     "runtime r: either a runtimeType or a path must be configured"),
    ({"runtimes": {"r": {"path": "/bin/r", "runtimeType": "io.containerd.r.v2"}}},
     "runtime r: cannot configure both path and runtimeType for the same runtime"),
    ({"runtimes": {"r": {"path": "/bin/r", "options": {"a": 1}}}},
     "runtime r: options cannot be used with a path runtime"),
    ({"runtimes": {"r": {"runtimeType": "io.containerd.r.v2", "runtimeArgs": ["-x"]}}},
     "runtime r: args cannot be used with a runtimeType runtime"),
    ({"runtimes": {"r": {"runtimeType": "io.containerd.r.v2"}}},
     "runtime r: runtimeType is not supported: berth has no containerd shims"),
    ({"default-runtime": "ghost"}, "specified default runtime 'ghost' does not exist"),
    ({"default-runtime": ["x"]}, "invalid daemon configuration file: default-runtime must be"),
    ({"default-runtime": False}, "invalid daemon configuration file: default-runtime must be"),
    ({"runtimes": {}, "bogus": 1}, "the following directives don't match any configuration "
                                   "option: bogus"),
])
def test_validation_errors_use_moby_messages(config: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        parse_config(json.dumps(config))
    assert raised.value.message.startswith(message)


def test_runc_is_also_named_by_its_containerd_type(tmp_path: pathlib.Path) -> None:
    """moby's configureRuntimes: io.containerd.runc.v2 is the built-in runc, may be the default
    runtime, and replaces a user's definition of that name (which moby never validates)."""
    raw = parse_config(json.dumps({
        "default-runtime": "io.containerd.runc.v2",
        "runtimes": {"io.containerd.runc.v2": {"runtimeType": "io.containerd.other.v1"},
                     "own": {"path": "/bin/own"}}}))
    snapshot = build_snapshot(raw, generation=1, runtimes_dir=tmp_path / "runtimes")
    assert snapshot.resolve_runtime("") == snapshot.resolve_runtime("io.containerd.runc.v2")
    assert snapshot.resolve_runtime("io.containerd.runc.v2").binary == "runc"
    assert snapshot.resolve_runtime("own").binary == "/bin/own"
    assert sorted(snapshot.runtimes) == ["io.containerd.runc.v2", "own", "runc"]
    wrapped = parse_config(json.dumps(
        {"runtimes": {"io.containerd.runc.v2": {"path": "/bin/crun", "runtimeArgs": ["-x"]}}}))
    assert build_snapshot(wrapped, generation=2, runtimes_dir=tmp_path / "runtimes"
                          ).resolve_runtime("io.containerd.runc.v2").binary == "runc"
    assert not (tmp_path / "runtimes").exists()  # no wrapper for a definition replaced


@pytest.mark.parametrize("name", ["io.containerd.kata.v2", "io.containerd.my-shim"])
def test_another_containerd_shim_name_is_refused_and_says_why(name: str) -> None:
    """moby hands such a name to containerd as a shim; berth has none to run it with."""
    with pytest.raises(InvalidParameter) as raised:
        ConfigSnapshot().resolve_runtime(name)
    assert raised.value.message.startswith(f"unknown or invalid runtime name: {name} (")
    assert "containerd shim" in raised.value.message
    with pytest.raises(InvalidParameter, match=f"^specified default runtime '{name}' does not"):
        parse_config(json.dumps({"default-runtime": name}))


@pytest.mark.parametrize("name", ["myshim", "/path/to/runc", "my/io.containerd.runc.v2"])
def test_an_invalid_runtime_name_gets_moby_message_alone(name: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        ConfigSnapshot().resolve_runtime(name)
    assert raised.value.message == f"unknown or invalid runtime name: {name}"


def test_invalid_json_is_invalid_parameter() -> None:
    with pytest.raises(InvalidParameter, match="invalid daemon configuration file"):
        parse_config("{bad")


def test_a_runtime_without_args_uses_its_binary_and_is_not_checked(tmp_path: pathlib.Path
                                                                   ) -> None:
    snapshot = build_snapshot(parse_config('{"runtimes": {"plain": {"path": "/no/such"}}}'),
                              generation=1, runtimes_dir=tmp_path / "runtimes")
    assert snapshot.resolve_runtime("plain").binary == "/no/such"
    assert not (tmp_path / "runtimes").exists()


def test_a_wrapped_runtime_is_checked_before_start(tmp_path: pathlib.Path) -> None:
    raw = parse_config('{"runtimes": {"w": {"path": "/no/such", "runtimeArgs": ["-a"]}}}')
    snapshot = build_snapshot(raw, generation=1, runtimes_dir=tmp_path)
    with pytest.raises(InvalidParameter, match=r"^error while looking up the specified runtime "
                                               r'path: exec: "/no/such"'):
        snapshot.resolve_runtime("w")


def test_wrapper_is_content_addressed_and_verifiable(tmp_path: pathlib.Path) -> None:
    raw = parse_config('{"runtimes": {"w": {"path": "/bin/true", "runtimeArgs": ["--a", "b"]}}}')
    snapshot = build_snapshot(raw, generation=7, runtimes_dir=tmp_path)
    runtime = snapshot.runtimes["w"]
    path = pathlib.Path(runtime.binary)
    content = path.read_bytes()
    assert path.name == f"w.{hashlib.sha256(content).hexdigest()}" == f"w.{runtime.digest}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert content == b"#!/bin/sh\nexec /bin/true --a b \"$@\"\n"
    checked = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True,
                             check=True).stdout.split()[0]
    assert checked == runtime.digest
    again = build_snapshot(raw, generation=8, runtimes_dir=tmp_path)
    assert again.runtimes["w"].binary == runtime.binary and len(list(tmp_path.iterdir())) == 1


def test_hostile_arguments_reach_the_runtime_as_one_argument(tmp_path: pathlib.Path) -> None:
    recorder = tmp_path / "record-args"
    recorder.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > '
                        f'{tmp_path}/args\n')
    recorder.chmod(0o755)
    pwned = tmp_path / "pwned"
    hostile = f"--log=/tmp/a b; touch {pwned}"
    path, _ = write_wrapper(tmp_path / "runtimes", "r",
                            wrapper_script(str(recorder), (hostile, "$(touch x)", "'q'")))
    subprocess.run([path, "create", "with space"], check=True, cwd=tmp_path)
    assert (tmp_path / "args").read_text().splitlines() == [
        hostile, "$(touch x)", "'q'", "create", "with space"]
    assert not pwned.exists() and not (tmp_path / "x").exists()


def keeper_for(engine: Engine, root: pathlib.Path, config_file: pathlib.Path) -> ConfigKeeper:
    return ConfigKeeper(path=str(config_file), root=root, store=engine.config,
                        db=engine.saga.db, events=engine.saga.events)


def test_reload_keeps_the_running_configuration_when_the_new_one_is_invalid(
        engine: Engine, tmp_path: pathlib.Path) -> None:
    config_file = tmp_path / "daemon.json"
    config_file.write_text('{"runtimes": {"w": {"path": "/bin/true", "runtimeArgs": ["-a"]}}}')
    keeper = keeper_for(engine, tmp_path, config_file)
    first = keeper.start()
    for broken in ("{bad", '{"unknown-key": true}', '{"runtimes": {"runc": {"path": "/x"}}}',
                   '{"default-runtime": "nope"}'):
        config_file.write_text(broken)
        with pytest.raises(InvalidParameter):
            keeper.reload()
        assert engine.config.current() is first
    config_file.write_text('{"runtimes": {"w": {"path": "/bin/true"}}, "experimental": true}')
    seen: list[str] = []
    engine.saga.events.subscribe(lambda event: seen.append(event.action))
    second = keeper.reload()
    assert second.generation == first.generation + 1 and second.experimental
    assert seen == ["reload"]
    with engine.saga.db.read() as reader:
        stored = reader.generations()
    assert [(g.generation, g.reason) for g in stored] == [(1, "start"), (2, "reload")]
    assert stored[1].runtimes["w"] == "/bin/true"


def test_a_reload_without_the_runtimes_key_keeps_the_running_runtimes(
        engine: Engine, tmp_path: pathlib.Path) -> None:
    """moby's reloadPlatform: Runtimes is replaced only if the key is set; default-runtime
    goes back to runc without its key."""
    config_file = tmp_path / "daemon.json"
    config_file.write_text('{"runtimes": {"wrap": {"path": "/bin/true", "runtimeArgs": ["-a"]}},'
                           ' "default-runtime": "wrap"}')
    keeper = keeper_for(engine, tmp_path, config_file)
    first = keeper.start()
    config_file.write_text('{"debug": true}')
    second = keeper.reload()
    assert second.runtimes["wrap"] == first.runtimes["wrap"]
    assert (second.default_runtime, second.debug) == ("runc", True)
    config_file.write_text('{"default-runtime": "wrap"}')  # valid: wrap is still configured
    assert keeper.reload().default_runtime == "wrap"
    config_file.write_text('{"runtimes": {}}')  # the key set, empty: the runtimes go
    assert sorted(keeper.reload().runtimes) == ["io.containerd.runc.v2", "runc"]


def test_gc_at_start_keeps_scripts_of_existing_containers(engine: Engine,
                                                          tmp_path: pathlib.Path) -> None:
    config_file = tmp_path / "daemon.json"
    config_file.write_text('{"runtimes": {"w": {"path": "/bin/true", "runtimeArgs": ["-a"]}}}')
    keeper = keeper_for(engine, tmp_path, config_file)
    old = keeper.start().runtimes["w"].binary
    record = engine.create(make_config("kept", runtime="w"))
    with engine.saga.db.write() as writer:  # as a start locks its binary in
        writer.update_container(record, {"runtime_binary": old}, [], JournalContext(), 0)
    config_file.write_text('{"runtimes": {"w": {"path": "/bin/true", "runtimeArgs": ["-b"]}}}')
    newer = keeper.reload().runtimes["w"].binary
    config_file.write_text('{"runtimes": {"w": {"path": "/bin/true", "runtimeArgs": ["-c"]}}}')
    orphan = keeper.reload().runtimes["w"].binary
    config_file.write_text('{"runtimes": {"w": {"path": "/bin/true", "runtimeArgs": ["-d"]}}}')
    restarted = keeper_for(engine, tmp_path, config_file).start()  # the daemon starts again
    current = restarted.runtimes["w"].binary
    assert os.path.exists(old) and os.path.exists(current)
    assert not os.path.exists(newer) and not os.path.exists(orphan)
    with engine.saga.db.read() as reader:
        removed = reader.generations()[-1].removed_wrappers
    assert sorted(removed or []) == sorted([newer, orphan])


def test_snapshot_swap_is_atomic_for_readers() -> None:
    store = ConfigStore(ConfigSnapshot(generation=0))
    snapshots = [ConfigSnapshot(generation=n, default_runtime="runc") for n in range(1, 200)]
    seen: list[int] = []

    def read() -> None:
        for _ in range(2000):
            snapshot = store.current()
            seen.append(snapshot.generation)
            assert snapshot.resolve_runtime("").name == "runc"

    reader = threading.Thread(target=read)
    reader.start()
    for snapshot in snapshots:
        store.swap(snapshot)
    reader.join()
    assert seen == sorted(seen)
