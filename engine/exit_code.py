"""Docker's start-error classifier (``setExitCodeFromError``, spec section 2.1).

Matched case-insensitively on the error text, first match wins; the returned error replaces the
original one's class (InvalidParameter for 126/127, Unknown for 128).
"""

from __future__ import annotations

from engine.errors import BerthError, InvalidParameter, Unknown

EXIT_EACCESS = 126
EXIT_CMD_NOT_FOUND = 127
EXIT_UNKNOWN = 128

_NOT_FOUND_MARKERS = (
    "executable file not found",
    "no such file or directory",
    "system cannot find the file specified",
    "failed to run runc create/exec call",
)
_MOUNT_HINT = (
    ": Are you trying to mount a directory onto a file (or vice-versa)? "
    "Check if the specified host path exists and is the expected type"
)


def classify_start_error(error: BaseException) -> tuple[int, BerthError]:
    """Return the exit code and the error a failed runtime start reports."""
    message = str(error)
    lowered = message.lower()
    if "permission denied" in lowered:
        return EXIT_EACCESS, InvalidParameter(message)
    if "is a directory" in lowered:
        return EXIT_EACCESS, InvalidParameter(message + ": permission denied")
    if "not a directory" in lowered:
        return EXIT_CMD_NOT_FOUND, InvalidParameter(message + _MOUNT_HINT)
    if any(marker in lowered for marker in _NOT_FOUND_MARKERS):
        return EXIT_CMD_NOT_FOUND, InvalidParameter(message)
    return EXIT_UNKNOWN, Unknown(message)
