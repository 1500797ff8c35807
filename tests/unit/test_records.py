"""The store's records list their fields in column order: the reader builds them positionally."""

from __future__ import annotations

import pytest
from sqlalchemy import Table

from engine.store import ContainerRecord, HistoryRecord, OperationRecord, StepRecord
from models import Container, HistoryEntry, Operation, OperationStep


def columns(table: Table) -> tuple[str, ...]:
    return tuple(column.name for column in table.columns)


@pytest.mark.parametrize(("record", "model"), [
    (ContainerRecord, Container),
    (OperationRecord, Operation),
    (StepRecord, OperationStep),
], ids=["containers", "operations", "operation_steps"])
def test_record_fields_are_the_table_columns(record: type, model: type) -> None:
    assert record._fields == columns(model.__table__)


def test_history_record_fields_are_the_history_columns() -> None:
    # ``event_seq`` stands for ``history.id``: the global, increasing event sequence.
    fields = tuple("id" if name == "event_seq" else name for name in HistoryRecord._fields)
    assert fields == columns(HistoryEntry.__table__)
