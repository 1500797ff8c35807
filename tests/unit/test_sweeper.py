"""The sweeper: what it is given is out of sight at once and freed in the background."""

from __future__ import annotations

import os
import pathlib

import pytest

from engine.sweeper import Sweeper


def tree(root: pathlib.Path) -> pathlib.Path:
    (root / "upper" / "etc").mkdir(parents=True)
    (root / "upper" / "etc" / "hostname").write_text("box\n")
    (root / "work").mkdir()
    (root / "log.json").write_text("{}\n")
    return root


def test_discard_moves_the_tree_out_at_once_and_frees_it(tmp_path: pathlib.Path) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    container = tree(tmp_path / "containers" / "abc")
    assert sweeper.discard(str(container)) is True
    assert not container.exists()  # gone from its path when discard returns
    assert sweeper.drain(timeout=10)
    assert os.listdir(tmp_path / "trash") == []


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
    assert os.listdir(tmp_path / "trash") == []


def test_a_crashed_daemons_trash_is_emptied_when_the_next_opens(tmp_path: pathlib.Path
                                                                 ) -> None:
    trash = tmp_path / "trash"
    tree(trash / "4242.0.abc")  # what a daemon killed before its sweeper ran left behind
    (trash / "4242.1.bundle").mkdir()
    sweeper = Sweeper(trash)
    assert sweeper.drain(timeout=10)
    assert os.listdir(trash) == []


def test_close_later_closes_the_descriptor(tmp_path: pathlib.Path) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    descriptor = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    sweeper.close_later(descriptor)
    assert sweeper.drain(timeout=10)
    with pytest.raises(OSError):
        os.fstat(descriptor)


def test_work_runs_in_submission_order(tmp_path: pathlib.Path) -> None:
    """A filesystem is torn down before the directories under it are freed: the descriptor
    queued first is closed before the tree queued after it is removed."""
    sweeper = Sweeper(tmp_path / "trash")
    container = tree(tmp_path / "c")
    descriptor = os.open(container / "upper", os.O_PATH | os.O_DIRECTORY)
    sweeper.close_later(descriptor)
    sweeper.discard(str(container))
    assert sweeper.drain(timeout=10)
    with pytest.raises(OSError):
        os.fstat(descriptor)
    assert os.listdir(tmp_path / "trash") == []


def test_an_idle_sweeper_starts_no_thread(tmp_path: pathlib.Path) -> None:
    sweeper = Sweeper(tmp_path / "trash")
    assert sweeper.drain(timeout=0)
    assert sweeper._thread is None
