"""``berth ps --filter KEY=VALUE``: Docker's container list filters, applied to the list.

Values of one key are alternatives (any may match); different keys must all match. Keys:
``id`` (a prefix), ``name`` (a regular expression searched in ``/NAME``), ``status``,
``exited`` (an exit code, of exited containers), ``ancestor`` (the image by name or digest),
``before`` / ``since`` (created before / after a container), ``volume`` (a named volume or a
mount's source or destination), ``network`` (its mode), ``label`` (berth has no labels:
matches nothing) and ``health`` (``none`` without a health check).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")
KEYS = ("id", "name", "status", "exited", "ancestor", "before", "since", "volume", "network",
        "label", "health")


class FilterError(Exception):
    """A filter Docker would refuse (the message is Docker's)."""


def parse_filters(specs: Sequence[str]) -> dict[str, list[str]]:
    """``KEY=VALUE`` flags as alternatives by key. Raises FilterError."""
    filters: dict[str, list[str]] = {}
    for spec in specs:
        key, equals, value = spec.partition("=")
        key = key.strip().lower()
        if not equals:
            raise FilterError(f"bad format of filter (expected name=value): {spec}")
        if key not in KEYS:
            raise FilterError(f"invalid filter '{key}'")
        if key == "status" and value not in STATUSES:
            raise FilterError(f"invalid filter 'status={value}'")
        if key == "health" and value not in HEALTH:
            raise FilterError(f"invalid filter 'health={value}'")
        if key == "exited" and not re.fullmatch(r"[+-]?\d+", value):
            raise FilterError(f'strconv.Atoi: parsing "{value}": invalid syntax')
        if key == "name":
            try:
                re.compile(value)
            except re.error as exc:
                raise FilterError(f"invalid filter 'name={value}': {exc}") from None
        filters.setdefault(key, []).append(value)
    return filters


def wants_all(filters: dict[str, list[str]]) -> bool:
    """Docker lists the stopped containers too when a status is asked for."""
    return "status" in filters


def matcher(filters: dict[str, list[str]], containers: Sequence[Any]
            ) -> Callable[[Any], bool]:
    """A test of one container; ``containers`` (all of them) resolve ``before`` and
    ``since``. Raises FilterError for a reference to no container."""
    created: dict[str, int] = {}
    for key in ("before", "since"):
        for reference in filters.get(key, []):
            created[f"{key}={reference}"] = _created_of(reference, containers)

    def one(key: str, value: str, container: Any) -> bool:
        if key == "id":
            return bool(container.id.startswith(value))
        if key == "name":
            return re.search(value, f"/{container.name}") is not None
        if key == "status":
            return bool(container.status == value)
        if key == "exited":
            return bool(container.status == "exited" and container.exit_code == int(value))
        if key == "ancestor":
            return value in (container.image, container.image_digest) or (
                ":" not in value and container.image == f"{value}:latest")
        if key == "before":
            return bool(container.created_ms < created[f"before={value}"])
        if key == "since":
            return bool(container.created_ms > created[f"since={value}"])
        if key == "volume":
            return any(value in spec.split(":")[:2] for spec in container.config.mounts)
        if key == "network":
            return bool((container.config.network_mode or "none") == value)
        if key == "health":
            return value == "none"  # no health checks are run yet
        return False  # label: berth has no labels

    def test(container: Any) -> bool:
        return all(any(one(key, value, container) for value in values)
                   for key, values in filters.items())

    return test


def _created_of(reference: str, containers: Sequence[Any]) -> int:
    for container in containers:
        if reference and (reference == container.name or container.id.startswith(reference)):
            return int(container.created_ms)
    raise FilterError(f"No such container: {reference}")
