"""The sweeper: what it is given is out of sight at once and freed in the background."""

from __future__ import annotations

import os
import pathlib
import threading

import pytest

from engine import sweeper as sweeper_module
from engine.sweeper import Sweeper


def tree(root: pathlib.Path) -> pathlib.Path:
    (root / "upper" / "etc").mkdir(parents=True)
    (root / "upper" / "etc" / "hostname").write_text("box\n")
    (root / "work").mkdir()
    (root / "log.json").write_text("{}\n")
    return root


def trash_content(trash: pathlib.Path) -> list[str]:
    """Everything under the trash but the (empty) directories of sweepers."""
    return sorted(str(path.relative_to(trash)) for path in trash.rglob("*")
                  if not (path.is_dir() and not any(path.iterdir())))


def test_discard_moves_the_tree_out_at_once_and_frees_it(tmp_path: pathlib.Path) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    container = tree(tmp_path / "containers" / "abc")
    assert sweeper.discard(str(container)) is True
    assert not container.exists()  # gone from its path when discard returns
    assert sweeper.drain(timeout=10)
    assert trash_content(tmp_path / "trash") == []


def test_discarding_nothing_is_not_an_error(tmp_path: pathlib.Path) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    assert sweeper.discard(str(tmp_path / "never-was")) is False
    assert sweeper.drain(timeout=10)


def test_the_same_name_discarded_twice_keeps_both_apart(tmp_path: pathlib.Path) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    for content in ("first", "second"):
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        (bundle / "config.json").write_text(content)
        assert sweeper.discard(str(bundle)) is True
    assert sweeper.drain(timeout=10)
    assert trash_content(tmp_path / "trash") == []


def test_a_crashed_daemons_trash_is_emptied_when_the_next_opens(tmp_path: pathlib.Path
                                                                 ) -> None:
    trash = tmp_path / "trash"
    tree(trash / "0123456789abcdef" / "c1.abc")  # a dead sweeper's directory: nobody holds it
    tree(trash / "4242.0.abc")  # an older daemon's flat leftovers, a file among them
    (trash / "4242.1.config.json").write_text("{}")
    sweeper = Sweeper(trash)
    assert sweeper.drain(timeout=10)
    assert trash_content(trash) == []


def test_a_live_sweepers_trash_is_left_to_it(tmp_path: pathlib.Path) -> None:
    """Two engines on one root (a restart, in tests): the second frees only what nobody
    holds, never what the first has queued but not freed yet."""
    trash = tmp_path / "trash"
    first = Sweeper(trash)
    in_flight = tree(first.directory / "in-flight.abc")  # queued by the first, not yet freed
    abandoned = tree(trash / "fedcba9876543210")
    second = Sweeper(trash)
    assert second.drain(timeout=10)
    assert in_flight.exists()
    assert not abandoned.exists()


def test_close_later_closes_the_descriptor(tmp_path: pathlib.Path) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    descriptor = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    sweeper.close_later(descriptor, "rootfs")
    assert sweeper.drain(timeout=10)
    with pytest.raises(OSError):
        os.fstat(descriptor)


def blocked(sweeper: Sweeper, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold the sweeper's thread on a first task until the returned event is set."""
    release = threading.Event()
    real = sweeper_module.remove_tree

    def remove(path: str) -> None:
        if path.endswith(".hold"):
            release.wait(10)
        real(path)

    monkeypatch.setattr(sweeper_module, "remove_tree", remove)
    (sweeper.directory.parent / "hold").mkdir()
    sweeper.discard(str(sweeper.directory.parent / "hold"))
    return release


def test_settle_closes_a_queued_descriptor_at_once(tmp_path: pathlib.Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    release = blocked(sweeper, monkeypatch)
    descriptor = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    sweeper.close_later(descriptor, "/root/containers/c1/rootfs")
    sweeper.settle("/root/containers/c1/rootfs")  # while the thread is still busy
    with pytest.raises(OSError):
        os.fstat(descriptor)
    release.set()
    assert sweeper.drain(timeout=10)  # the queued close finds nothing left to do


def test_work_runs_in_submission_order(tmp_path: pathlib.Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem is torn down before the directories under it are freed."""
    sweeper = Sweeper(tmp_path / "trash")
    done: list[str] = []
    real_settle, real_remove = Sweeper.settle, sweeper_module.remove_tree
    monkeypatch.setattr(Sweeper, "settle",
                        lambda self, key: (done.append(f"close {key}"), real_settle(self, key)))
    monkeypatch.setattr(sweeper_module, "remove_tree",
                        lambda path: (done.append("remove " + path.rsplit(".", 1)[-1]),
                                      real_remove(path)))
    for index in range(3):
        container = tree(tmp_path / f"c{index}")
        sweeper.close_later(os.open(container / "upper", os.O_PATH | os.O_DIRECTORY),
                            f"rootfs{index}")
        sweeper.discard(str(container))
    assert sweeper.drain(timeout=10)
    assert done == [step for index in range(3)
                    for step in (f"close rootfs{index}", f"remove c{index}")]


def test_a_failing_task_never_stops_the_next(tmp_path: pathlib.Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    real = sweeper_module.remove_tree

    def remove(path: str) -> None:
        if path.endswith(".bad"):
            raise ValueError("something no one expected")
        real(path)

    monkeypatch.setattr(sweeper_module, "remove_tree", remove)
    sweeper.discard(str(tree(tmp_path / "bad")))
    sweeper.discard(str(tree(tmp_path / "good")))
    assert sweeper.drain(timeout=10)
    assert [path.name.rsplit(".", 1)[-1] for path in sweeper.directory.iterdir()] == ["bad"]


@pytest.mark.parametrize("depth, name", [(1300, "d"), (2100, "abc")])
def test_a_tree_deeper_than_the_recursion_limit_is_freed(tmp_path: pathlib.Path, depth: int,
                                                         name: str) -> None:
    """A container can build one in its upper layer; shutil.rmtree recurses per level. The
    second one's paths are longer than PATH_MAX (4096): freed by path, it leaked for good."""
    root = tmp_path / "deep"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept").write_text("host file")
    descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for level in range(depth):
        os.mkdir(name, dir_fd=descriptor)
        if level % 500 == 0:  # wide here and there: siblings, files and a link out
            os.mkdir("sibling", dir_fd=descriptor)
            os.close(os.open("file", os.O_WRONLY | os.O_CREAT, dir_fd=descriptor))
            os.symlink(str(outside), "link", dir_fd=descriptor)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=descriptor)
        os.close(descriptor)
        descriptor = child
    os.close(os.open("bottom", os.O_WRONLY | os.O_CREAT, dir_fd=descriptor))
    os.close(descriptor)
    sweeper = Sweeper(tmp_path / "trash")
    assert sweeper.discard(str(root))
    assert sweeper.drain(timeout=30)
    assert trash_content(tmp_path / "trash") == []
    assert (outside / "kept").read_text() == "host file"  # links were removed, not followed


def test_an_idle_sweeper_starts_no_thread(tmp_path: pathlib.Path) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    assert sweeper.drain(timeout=0)
    assert sweeper._thread is None
