"""Image references: Docker's reference grammar and its familiar form.

A module of its own, with nothing heavy to import, so that the CLI (its ``ancestor`` filter)
reads a reference exactly as the image store does.
"""

from __future__ import annotations

import re

from engine.errors import InvalidParameter

# The distribution reference grammar (docker/distribution/reference), without digests.
_ALNUM = r"[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]"
_DOMAIN = rf"(?:{_ALNUM})(?:\.(?:{_ALNUM}))*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?",
    re.ASCII)  # Go's \w: ASCII only
_NAME_MAX = 255


def normalize_reference(reference: str) -> str:
    """``name[:tag]`` -> ``name:tag`` (``latest`` by default), checked against Docker's
    reference grammar, in Docker's familiar form (``docker.io/library/x`` is ``x``). Raises
    InvalidParameter ``invalid reference format``."""
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        lowercase = _REFERENCE.fullmatch(reference.lower()) is not None
        detail = ": repository name must be lowercase" if lowercase else ""
        raise InvalidParameter(f"invalid reference format{detail}")
    name, tag = match.group("name"), match.group("tag") or "latest"
    # Docker's familiar form: Docker Hub's domain and its "library/" are implied.
    for domain in ("docker.io/", "index.docker.io/"):
        name = name.removeprefix(domain)
    if name.startswith("library/") and name.count("/") == 1:
        name = name.removeprefix("library/")
    if len(name) > _NAME_MAX:
        raise InvalidParameter(
            f"invalid reference format: repository name must not be more than {_NAME_MAX} "
            "characters")
    if name == "sha256":  # "sha256:<hex>" is how a dangling image is named (by its digest)
        raise InvalidParameter("invalid reference format: sha256 is reserved for image IDs")
    if re.fullmatch(r"[0-9a-f]{64}", name):
        raise InvalidParameter(
            f"invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")
    return f"{name}:{tag}"


def familiar_name(reference: str) -> str:
    """``reference`` without its tag, in the familiar form (moby's events ``stripTag``):
    ``docker.io/library/busybox:1.36`` is ``busybox``; an invalid one is left as it is."""
    try:
        normalized = normalize_reference(reference)
    except InvalidParameter:
        return reference
    return normalized.rsplit(":", 1)[0]


_IMAGE_ID = re.compile(r"(?:sha256:)?([0-9a-f]{1,64})")


def image_id_prefix(value: str) -> str | None:
    """``sha256:HEX`` when ``value`` reads as an image ID or a prefix of one (``[sha256:]hex``,
    as moby's lookup takes it), else None."""
    match = _IMAGE_ID.fullmatch(value)
    return f"sha256:{match.group(1)}" if match else None
