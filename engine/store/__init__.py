"""The store: berth's only door to SQLAlchemy and the database.

``Database`` opens and migrates a SQLite file; ``Database.write()`` yields a ``Writer`` inside a
``BEGIN IMMEDIATE`` transaction and ``Database.read()`` a ``Reader`` on a read-only snapshot.
"""

from engine.store.database import MEMORY, Database, Durability, alembic_config
from engine.store.reader import Reader
from engine.store.records import (
    ContainerRecord,
    GenerationRecord,
    HistoryDraft,
    HistoryRecord,
    ImageRecord,
    JournalContext,
    OperationRecord,
    RequestRecord,
    StepRecord,
)
from engine.store.writer import StepDraft, Writer

__all__ = [
    "MEMORY",
    "ContainerRecord",
    "Database",
    "Durability",
    "GenerationRecord",
    "HistoryDraft",
    "HistoryRecord",
    "ImageRecord",
    "JournalContext",
    "OperationRecord",
    "Reader",
    "RequestRecord",
    "StepDraft",
    "StepRecord",
    "Writer",
    "alembic_config",
]
