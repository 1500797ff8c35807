"""Network namespaces of ``none`` mode: made by one worker thread that keeps none alive."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading

import pytest

from engine import linux
from engine.errors import System

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (unshare, mount)")


def worker_namespace() -> str:
    thread = next(t for t in threading.enumerate() if t.name == "berth-netns")
    return os.readlink(f"/proc/self/task/{thread.native_id}/ns/net")


PROBE = """
import fcntl, socket, struct
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
    answer = fcntl.ioctl(probe, 0x8913, struct.pack("16sH", b"lo", 0))  # SIOCGIFFLAGS
print(struct.unpack("16sH", answer)[1])
"""


def loopback_is_up(namespace: pathlib.Path) -> bool:
    """Asked from inside the namespace (sysfs would answer for the host's)."""
    flags = subprocess.run(["nsenter", f"--net={namespace}", sys.executable, "-c", PROBE],
                           capture_output=True, text=True, check=True).stdout
    return int(flags) & linux.IFF_UP == linux.IFF_UP


def test_each_namespace_is_new_with_loopback_up_and_the_worker_returns_home(
        tmp_path: pathlib.Path) -> None:
    ours = os.readlink("/proc/thread-self/ns/net")
    made = [tmp_path / "ns1", tmp_path / "ns2"]
    try:
        for path in made:
            linux.create_network_namespace(str(path))
            assert worker_namespace() == ours  # it keeps none of them alive
        inodes = {os.stat(path).st_ino for path in made}
        assert len(inodes) == 2 and os.stat("/proc/self/ns/net").st_ino not in inodes
        assert all(loopback_is_up(path) for path in made)
    finally:
        for path in made:
            linux.unmount(str(path))


def test_a_worker_that_cannot_return_fails_and_the_next_call_gets_a_fresh_one(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        linux.create_network_namespace(str(tmp_path / "before"))
        first = linux._worker
        monkeypatch.setattr(linux._libc, "setns", lambda *_: -1)
        with pytest.raises(System, match="cannot return"):
            linux.create_network_namespace(str(tmp_path / "stuck"))
        monkeypatch.undo()
        assert first is not None and not first.alive
        linux.create_network_namespace(str(tmp_path / "after"))
        assert linux._worker is not first
        assert worker_namespace() == os.readlink("/proc/thread-self/ns/net")
    finally:
        monkeypatch.undo()
        for name in ("before", "stuck", "after"):
            linux.unmount(str(tmp_path / name))


def test_the_worker_returns_to_the_daemons_namespace_whoever_starts_it(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Started from a thread that is itself elsewhere, the worker still goes home to the
    process's namespace, and keeps the starter's alive no more than any other."""
    monkeypatch.setattr(linux, "_worker", None)
    daemon = os.readlink("/proc/self/ns/net")
    failures: list[BaseException] = []

    def elsewhere() -> None:
        try:
            assert linux._libc.unshare(linux.CLONE_NEWNET) == 0
            linux.create_network_namespace(str(tmp_path / "made"))
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    try:
        assert failures == []
        assert worker_namespace() == daemon
    finally:
        linux.unmount(str(tmp_path / "made"))
