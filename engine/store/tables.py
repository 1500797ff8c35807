"""The models' tables, typed as Core ``Table``s for compiling statements."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from models import (
    ApiRequest,
    ConfigGeneration,
    Container,
    HistoryEntry,
    Image,
    Operation,
    OperationStep,
)

containers = cast(Table, Container.__table__)
history = cast(Table, HistoryEntry.__table__)
operations = cast(Table, Operation.__table__)
steps = cast(Table, OperationStep.__table__)
images = cast(Table, Image.__table__)
api_requests = cast(Table, ApiRequest.__table__)
config_generations = cast(Table, ConfigGeneration.__table__)
