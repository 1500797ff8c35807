"""SQLAlchemy models of berth's database: containers, their history and their operations.

Only the store (``engine.store``), these models and the migrations import SQLAlchemy.
Times are integer milliseconds since the Unix epoch, UTC; the audit views render them as ISO 8601.
"""

from models.base import Base, metadata
from models.container import Container, Image
from models.journal import ApiRequest, ConfigGeneration, HistoryEntry, Operation, OperationStep

__all__ = ["ApiRequest", "Base", "ConfigGeneration", "Container", "HistoryEntry", "Image",
           "Operation", "OperationStep", "metadata"]
