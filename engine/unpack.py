"""Unpack an image tarball inside a chroot of its new root filesystem.

``python -I engine/unpack.py ROOTFS [PARENT_PID] < TARBALL`` (run by ``engine.image``, by
path: it imports nothing of the package; as root; it stops once PARENT_PID is no longer its
parent).

Like Docker's chrootarchive, the unpacking process first changes its root to the empty
``ROOTFS``: no member can reach the host, whatever its name (absolute, ``..``), whatever the
symlinks or hardlinks before it point at, because the kernel resolves every path inside the new
root. Path checks in user space (tarfile's extraction filters) have been bypassed more than
once; here nothing depends on them.

Whiteouts are applied as Docker's layer unpacking applies them to an image's only layer:
``.wh.NAME`` removes NAME (unpacked before it) and is not kept; ``.wh..wh..opq`` (an opaque
directory: nothing lies below) and AUFS's ``.wh..wh.*`` metadata are not kept either.

Members are extracted as they are, as Docker does: owners by number, modes with their setuid
and setgid bits, device nodes, times, extended attributes (PAX ``SCHILY.xattr``). A path
that exists already is removed first unless both it and the member are directories, so a
regular file never writes through a hardlink into another file. Exit status 0 on success;
otherwise one line on stderr and 1 (the archive cannot be unpacked) or 3 (the host failed: a
full disk, an I/O error). It dies with the daemon (``PR_SET_PDEATHSIG``): an import nobody
waits for stops at once and releases its staging directory for the next daemon to sweep.
"""

from __future__ import annotations

# Everything extraction may import is imported before the chroot, which has no Python.
import bz2  # noqa: F401 - compressed tarballs
import contextlib
import ctypes
import errno
import gzip  # noqa: F401
import lzma  # noqa: F401
import os
import shutil
import signal
import stat
import sys
import tarfile
import zlib  # noqa: F401

_PR_SET_PDEATHSIG = 1
# The host's fault, not the archive's: the daemon reports these as a System error.
HOST_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM})
HOST_FAILURE = 3


WHITEOUT = ".wh."
WHITEOUT_META = ".wh..wh."


def _remove(path: str) -> None:
    """Remove ``path`` (a whiteout's target), whatever it is, if it is there."""
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(info.st_mode) and os.path.normpath(path) != "/":
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _clear(member: tarfile.TarInfo) -> None:
    """Remove what ``member`` replaces (Docker's rule: everything but a directory that a
    directory member merges into)."""
    path = os.path.join("/", member.name)
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(info.st_mode):
        if not member.isdir() and os.path.normpath(path) != "/":
            shutil.rmtree(path)
    else:
        os.unlink(path)


def unpack(archive: tarfile.TarFile, parent: int = 0) -> None:
    """Extract every member into ``/`` (the chroot); directories' modes, owners and times
    are set last, so that a read-only directory does not refuse its own members. A member
    for the root itself (``./``, ``/``) only gives the root its attributes."""
    trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
    directories: list[tuple[tarfile.TarInfo, str]] = []
    for member in archive:
        if parent and os.getppid() != parent:  # the daemon died: nobody wants the rest
            raise OSError("the daemon that asked for this import is gone")
        path = os.path.normpath(os.path.join("/", member.name))
        if path in ("/", "//"):
            if member.isdir():
                directories.append((member, "/"))
            continue
        base = os.path.basename(path)
        if base.startswith(WHITEOUT) or path.lstrip("/").startswith(WHITEOUT_META):
            hidden = base[len(WHITEOUT):]
            # ``.wh.``, ``.wh..`` and ``.wh...`` name no entry: they would remove the
            # directory or its parent.
            if not base.startswith(WHITEOUT_META) and hidden not in ("", ".", ".."):
                _remove(os.path.join(os.path.dirname(path), hidden))
            continue
        try:
            _clear(member)
            if member.isdir():
                directories.append((member, path))
            archive.extract(member, "/", set_attrs=not member.isdir(), numeric_owner=True,
                            **trusted)  # type: ignore[arg-type]
            if not member.isdir():
                _set_xattrs(member, path)
        except OSError as exc:  # which member, in words: "[Errno 22] Invalid argument" is not
            raise OSError(exc.errno, f"cannot extract {member.name}: "
                                     f"{exc.strerror or exc}") from exc
        except (OverflowError, ValueError) as exc:  # an owner or a time out of range, say
            raise ValueError(f"cannot extract {member.name}: {exc}") from exc
        except KeyError as exc:  # a hardlink to neither a file on disk nor a member before it
            raise ValueError(f"cannot extract {member.name}: invalid hardlink to "
                             f"{member.linkname}: no such file in the archive") from exc
    _check_end(archive)
    last = {path: member for member, path in directories}  # a repeated directory: the last
    directories = [(member, path) for member, path in directories if last[path] is member]
    for member, path in reversed(directories):  # the deepest first, like extractall
        try:
            still = stat.S_ISDIR(os.lstat(path).st_mode)
        except OSError:
            still = False
        if not still:  # a later member replaced it (by a symlink, say): not through that
            continue
        archive.chown(member, path, True)
        archive.utime(member, path)
        archive.chmod(member, path)
        _set_xattrs(member, path)


def _check_end(archive: tarfile.TarFile) -> None:
    """Refuse an archive cut short inside a header, as Go's archive/tar (Docker's) does:
    tarfile takes a partial header, or a zero block followed by a partial one, for the end.
    The archive may end right after a member or after its first zero block."""
    stream = archive.fileobj
    assert stream is not None
    read = stream.tell() - archive.offset  # what tarfile read past the last member
    if read == 0:
        return
    if read < tarfile.BLOCKSIZE:
        raise tarfile.ReadError("unexpected EOF")
    following = stream.read(tarfile.BLOCKSIZE)  # after the first zero block: a second one
    if following and len(following) < tarfile.BLOCKSIZE:
        raise tarfile.ReadError("unexpected EOF")
    if following.strip(b"\0"):
        raise tarfile.ReadError("invalid tar header")


def _set_xattrs(member: tarfile.TarInfo, path: str) -> None:
    """The member's PAX ``SCHILY.xattr.*`` records (GNU tar's, Docker's): file capabilities
    (``security.capability``) among them. After the owner: chown clears capabilities."""
    if member.issym() or member.islnk():
        return
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            with contextlib.suppress(PermissionError):  # as Docker: user.* on a fifo, say
                os.setxattr(path, key.removeprefix("SCHILY.xattr."),
                            value.encode("utf-8", "surrogateescape"), follow_symlinks=False)


def _die_with(parent: int) -> None:
    """Be killed when ``parent`` dies; if it has already, leave now."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        print("the daemon that asked for this import is gone", file=sys.stderr)
        raise SystemExit(1)


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or not all(arg.isdigit() for arg in argv[1:]):
        print("usage: python -I engine/unpack.py ROOTFS [PARENT_PID] < TARBALL", file=sys.stderr)
        return 2
    if len(argv) == 2:
        _die_with(int(argv[1]))
    try:
        archive = tarfile.open(  # noqa: SIM115 - closed by the with below
            fileobj=os.fdopen(0, "rb", closefd=False), mode="r:*")
    except tarfile.ReadError as exc:
        # "file could not be opened successfully: - method gz: ..." for each method tried.
        why = "empty file" if "empty file" in str(exc) else "invalid header"
        print(f"not a tar archive (plain, gzip, bzip2 or xz): {why}", file=sys.stderr)
        return 1
    try:
        with archive:
            os.chroot(argv[0])
            os.chdir("/")
            unpack(archive, int(argv[1]) if len(argv) == 2 else 0)
    except (OSError, tarfile.TarError, EOFError, KeyError, ValueError) as exc:
        # An OSError's words without Python's "[Errno 17]" before them.
        print(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc,
              file=sys.stderr)
        return HOST_FAILURE if isinstance(exc, OSError) and exc.errno in HOST_ERRNOS else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
