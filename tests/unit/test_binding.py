"""The writer binds exact strings and ints: sqlite3 adapts anything else (a StrEnum member, a
bool) through a protocol that cost 8% of a start."""

from __future__ import annotations

import enum

from engine import lifecycle, state
from engine.store import writer


def _str_enums() -> list[type[enum.StrEnum]]:
    return [value for module in (state, lifecycle) for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, enum.StrEnum)
            and value is not enum.StrEnum]


def test_every_journal_enum_binds_as_its_plain_value() -> None:
    kinds = _str_enums()
    assert state.ContainerState in kinds and lifecycle.Event in kinds
    for kind in kinds:
        for member in kind:
            plain = writer._plain(member, member)
            assert type(plain) is str and plain == member.value, (kind, member)


def test_plain_strings_and_none_pass_through() -> None:
    assert writer._plain("mount_rootfs", "mount_rootfs") == "mount_rootfs"
    assert writer._plain(None, None) is None


def test_booleans_bind_as_ints() -> None:
    for column in writer._BOOLEAN_COLUMNS:
        assert type(writer._column_value(column, True)) is int
        assert writer._column_value(column, False) == 0
