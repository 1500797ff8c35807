"""Running the runtime binary through posix_spawnp: what reaches the child, what comes back."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import pytest

from engine import spawn


def test_stderr_is_captured_and_stdout_only_when_asked() -> None:
    done = spawn.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (done.returncode, done.stdout, done.stderr) == (3, "", "err\n")
    done = spawn.run(["sh", "-c", "echo out; echo err >&2"], capture_stdout=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")


def test_both_pipes_are_read_while_the_child_fills_them() -> None:
    """More than a pipe holds on each stream: reading one to its end first would deadlock."""
    script = "i=0; while [ $i -lt 3000 ]; do echo 0123456789abcdef0123456789abcdef; " \
             "echo 0123456789abcdef0123456789abcdef >&2; i=$((i+1)); done"
    done = spawn.run(["sh", "-c", script], capture_stdout=True)
    assert done.returncode == 0
    assert len(done.stdout) == len(done.stderr) == 3000 * 33


def test_a_missing_program_raises_file_not_found() -> None:
    with pytest.raises(FileNotFoundError):
        spawn.run(["berth-no-such-runtime"])


def test_death_by_signal_is_minus_the_signal() -> None:
    assert spawn.run(["sh", "-c", "kill -9 $$"]).returncode == -signal.SIGKILL


def test_the_child_gets_the_default_action_for_what_this_process_ignores() -> None:
    """A daemon ignores SIGPIPE (Python does) and the supervisor SIGHUP and SIGINT; a runtime
    and the container it starts must not inherit that."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        status = spawn.run(["cat", "/proc/self/status"], capture_stdout=True).stdout
    finally:
        signal.signal(signal.SIGINT, previous)
    ignored = int(next(line for line in status.splitlines()
                       if line.startswith("SigIgn:")).split()[1], 16)
    for number in (signal.SIGPIPE, signal.SIGINT, signal.SIGHUP, signal.SIGXFSZ):
        assert not ignored & (1 << (number - 1)), signal.Signals(number).name


def test_only_the_three_standard_descriptors_reach_the_child() -> None:
    kept = os.open(os.devnull, os.O_RDONLY)  # close-on-exec, as Python opens everything
    try:
        listing = spawn.run(["ls", "/proc/self/fd"], capture_stdout=True).stdout.split()
    finally:
        os.close(kept)
    # ls's own directory descriptor is the fourth.
    assert sorted(int(name) for name in listing) == [0, 1, 2, 3]


def test_a_process_without_standard_descriptors_still_keeps_the_streams_apart(
        tmp_path: pathlib.Path) -> None:
    """Started with 0-2 closed, its pipes get those numbers: the child's dup2s must not
    overwrite one with another."""
    result = tmp_path / "result"
    code = ("from engine import spawn; d = spawn.run(['sh', '-c', 'echo out; echo err >&2'], "
            f"capture_stdout=True); open({str(result)!r}, 'w').write(repr((d.stdout, d.stderr)))")
    subprocess.run(["sh", "-c", f'exec "{sys.executable}" -c "{code}" 0<&- 1>&- 2>&-'],
                   check=True, cwd=pathlib.Path(__file__).parents[2])
    assert result.read_text() == repr(("out\n", "err\n"))


def test_a_grandchild_holding_the_pipes_is_not_waited_for(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A wrapper script that leaves a process behind: the call ends WAIT_DELAY after the
    script's exit, with what it wrote, while that process lives on."""
    monkeypatch.setattr(spawn, "WAIT_DELAY", 0.1)
    done = spawn.run(["sh", "-c", "sleep 30 & echo $! >&2"])
    left = int(done.stderr)
    try:
        os.kill(left, 0)  # still alive: not waited for
    finally:
        os.kill(left, signal.SIGKILL)
    assert done.returncode == 0
