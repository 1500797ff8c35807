"""``berth ps --filter KEY=VALUE``: Docker's container list filters, applied to the list.

Values of one key are alternatives (any may match); different keys must all match. Keys: ``id``
(a prefix), ``name`` (a regular expression searched in ``NAME`` and ``/NAME``; one that does not
compile matches nothing, as Docker's; Python's engine, not Go's RE2), ``status``, ``exited`` (an
exit code, of exited containers), ``ancestor`` (the image a name names now, an ID or an ID
prefix), ``before`` / ``since`` (created before / after a container: its full ID, its name, or
an ID prefix that names one container), ``volume`` (a named volume or a mount's source or
destination), ``network`` (its mode), ``label`` (``KEY`` or ``KEY=VALUE``; all of them must
match, as moby's MatchKVList), ``publish`` and
``expose`` (berth has no ports: they match nothing), ``health`` (``none`` without a health
check), ``isolation`` (``default``) and ``is-task`` (``false``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from engine.errors import InvalidParameter
from engine.reference import image_id_prefix, normalize_reference

STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")
KEYS = ("id", "name", "status", "exited", "ancestor", "before", "since", "volume", "network",
        "label", "health", "publish", "expose", "isolation", "is-task")


class FilterError(Exception):
    """A filter Docker would refuse (the message is Docker's)."""


def parse_filter_flag(spec: str) -> tuple[str, str] | None:
    """One ``--filter`` value as (key, value), as Docker's flag reads it (both trimmed, the
    key lower case); None for an empty one (ignored). Raises FilterError."""
    if not spec:
        return None  # Docker's flag skips an empty one (one of spaces is malformed)
    key, equals, value = spec.partition("=")
    if not equals:
        raise FilterError(f'invalid argument "{spec}" for "-f, --filter" flag: bad format of '
                          "filter (expected name=value)")
    return key.strip().lower(), value.strip()


def parse_filters(specs: Sequence[str]) -> dict[str, list[str]]:
    """``KEY=VALUE`` flags as alternatives by key (what the daemon refuses: FilterError)."""
    filters: dict[str, list[str]] = {}
    for spec in specs:
        parsed = parse_filter_flag(spec)
        if parsed is None:
            continue
        key, value = parsed
        if key not in KEYS:
            raise FilterError(f"invalid filter '{key}'")
        if key == "status" and value not in STATUSES:
            raise FilterError(f"invalid filter 'status={value}'")
        if key == "health" and value not in HEALTH:
            raise FilterError(f"unrecognized filter value for health: {value}")
        if key == "exited" and not re.fullmatch(r"[+-]?\d+", value):
            raise FilterError(f'invalid filter \'exited={value}\': strconv.Atoi: parsing '
                              f'"{value}": invalid syntax')
        filters.setdefault(key, []).append(value)
    return filters


def _pattern(value: str) -> re.Pattern[str] | None:
    """A name filter's regular expression; None if it does not compile (matches nothing)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a FutureWarning for a POSIX class, say
            return re.compile(value)
    except (re.error, OverflowError, RecursionError, ValueError):
        return None


def wants_all(filters: dict[str, list[str]]) -> bool:
    """Docker lists the stopped containers too when a status is asked for."""
    return "status" in filters


def matcher(filters: dict[str, list[str]], containers: Sequence[Any],
            images: Mapping[str, str] | None = None) -> Callable[[Any], bool]:
    """A test of one container; ``containers`` (all of them) resolve ``before`` and
    ``since``, ``images`` (every name -> its image ID) ``ancestor``. Raises FilterError for a
    reference to no container."""
    created: dict[str, int] = {}
    for key in ("before", "since"):
        for reference in filters.get(key, []):
            created[f"{key}={reference}"] = _created_of(reference, containers)
    patterns = {value: _pattern(value) for value in filters.get("name", [])}

    def one(key: str, value: str, container: Any) -> bool:
        if key == "id":
            return bool(container.id.startswith(value))
        if key == "name":
            pattern = patterns[value]
            return pattern is not None and any(
                pattern.search(name) for name in (container.name, f"/{container.name}"))
        if key == "status":
            return bool(container.status == value)
        if key == "exited":
            return bool(container.status == "exited" and container.exit_code == int(value))
        if key == "ancestor":
            return _same_image(value, container, images)
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
        if key == "isolation":
            return value == "default"
        if key == "is-task":
            return value == "false"
        if key == "label":
            return match_kv_list(container.config.labels, [value])
        return False  # publish, expose: berth has no ports

    def test(container: Any) -> bool:
        # moby's MatchKVList: every label given must match; another key's values are
        # alternatives.
        return all((all if key == "label" else any)(one(key, value, container)
                                                    for value in values)
                   for key, values in filters.items())

    return test


def _tagged(reference: str) -> str:
    """``name`` as ``name:latest`` (Docker's default tag); a reference with a tag as it is."""
    return reference if ":" in reference.rsplit("/", 1)[-1] else f"{reference}:latest"


def match_kv_list(labels: Mapping[str, str], wanted: Iterable[str]) -> bool:
    """moby's MatchKVList: every one of ``wanted`` (``KEY``, or ``KEY=VALUE``) is in
    ``labels`` (a container's labels, a volume's, an event's attributes)."""
    for value in wanted:
        key, equals, text = value.partition("=")
        if key not in labels or (equals and labels[key] != text):
            return False
    return True


def _same_image(value: str, container: Any, images: Mapping[str, str] | None) -> bool:
    """Whether ``value`` names the container's image: by a name, the image it names now (as
    Docker's filter resolves it to an image ID; without ``images``, the name the container was
    created with), by its ID, or by a prefix of its ID."""
    if images is not None:
        try:
            named = images.get(normalize_reference(value))
        except InvalidParameter:
            named = None
        if named is not None:
            return bool(named == container.image_digest)
    elif value and _tagged(value) == _tagged(container.image or ""):
        return True
    bare = str(container.image_digest or "").removeprefix("sha256:")
    prefix = image_id_prefix(value)
    return bool(bare) and prefix is not None and f"sha256:{bare}".startswith(prefix)


def _created_of(reference: str, containers: Sequence[Any]) -> int:
    """When the container ``reference`` names was created: its full ID, then its name
    (``/name`` too), then an ID prefix that names only one. Raises FilterError."""
    name = reference.removeprefix("/")
    for found in ([c for c in containers if c.id == reference],
                  [c for c in containers if name and c.name == name]):
        if found:
            return int(found[0].created_ms)
    prefixed = [c for c in containers if reference and c.id.startswith(reference)]
    if len(prefixed) > 1:
        raise FilterError(f"multiple IDs found with provided prefix: {reference}")
    if prefixed:
        return int(prefixed[0].created_ms)
    raise FilterError(f"No such container: {reference}")
