"""Docker's start-error classifier (spec 2.1, behaviour 8)."""

from __future__ import annotations

import pytest

from engine.errors import ErrorClass, InvalidParameter, Unknown
from engine.exit_code import classify_start_error

HINT = (": Are you trying to mount a directory onto a file (or vice-versa)? "
        "Check if the specified host path exists and is the expected type")


@pytest.mark.parametrize(("message", "exit_code", "reported"), [
    ("open /bin/x: permission denied", 126, "open /bin/x: permission denied"),
    ("exec /data: is a directory", 126, "exec /data: is a directory: permission denied"),
    ("mount /etc/x: not a directory", 127, "mount /etc/x: not a directory" + HINT),
    ('exec: "nope": executable file not found in $PATH', 127,
     'exec: "nope": executable file not found in $PATH'),
    ("stat /bin/x: no such file or directory", 127, "stat /bin/x: no such file or directory"),
    ("The system cannot find the file specified.", 127,
     "The system cannot find the file specified."),
    ("failed to run runc create/exec call: exit status 1", 127,
     "failed to run runc create/exec call: exit status 1"),
])
def test_markers(message: str, exit_code: int, reported: str) -> None:
    code, error = classify_start_error(RuntimeError(message))
    assert code == exit_code
    assert type(error) is InvalidParameter
    assert str(error) == reported


@pytest.mark.parametrize(("message", "exit_code"), [
    ("OPEN: Permission Denied", 126),
    ("Is A Directory", 126),
    ("NOT A DIRECTORY", 127),
    ("Executable File Not Found", 127),
    ("No Such File Or Directory", 127),
    ("SYSTEM CANNOT FIND THE FILE SPECIFIED", 127),
    ("Failed To Run Runc Create/Exec Call", 127),
])
def test_matching_ignores_case_and_keeps_the_text(message: str, exit_code: int) -> None:
    code, error = classify_start_error(RuntimeError(message))
    assert code == exit_code
    assert error.error_class is ErrorClass.INVALID_PARAMETER
    assert str(error).startswith(message)


@pytest.mark.parametrize(("message", "exit_code", "reported"), [
    # permission denied is checked before everything else
    ("not a directory: permission denied", 126, "not a directory: permission denied"),
    ("is a directory: permission denied", 126, "is a directory: permission denied"),
    # is a directory before not a directory and the not-found markers
    ("is a directory; not a directory", 126, "is a directory; not a directory: permission denied"),
    ("is a directory: no such file or directory", 126,
     "is a directory: no such file or directory: permission denied"),
    # not a directory before the not-found markers
    ("no such file or directory; not a directory", 127,
     "no such file or directory; not a directory" + HINT),
])
def test_first_match_wins(message: str, exit_code: int, reported: str) -> None:
    code, error = classify_start_error(RuntimeError(message))
    assert (code, str(error)) == (exit_code, reported)


@pytest.mark.parametrize("original", [
    RuntimeError("runtime exploded"),
    InvalidParameter("unknown or invalid runtime name: x"),  # the class is dropped
    OSError("Connection refused"),
])
def test_anything_else_is_unknown_128(original: BaseException) -> None:
    code, error = classify_start_error(original)
    assert code == 128
    assert type(error) is Unknown
    assert str(error) == str(original)
