"""The Linux host: what a start acquires besides the runtime task, for real.

Satisfies ``engine.host.Host``. Under the data root:
* ``containers/<id>/rootfs``: an overlay mount (the image as lower layer; ``upper`` and ``work``
  per container, kept across stop/start, deleted by removal);
* ``netns/<id>``: the network namespace of ``none`` mode, made by the runtime (loopback up)
  and bound there once the task is created;
* ``containers/<id>/shm`` and ``containers/<id>/secrets``: tmpfs mounts;
* ``volumes/<name>/_data``: named volumes (bind mounts are the user's own paths);
* ``containers/<id>/bundle/config.json``: the OCI bundle;
* ``trash/``: what releases and removals moved out of sight, freed in the background
  (``engine.sweeper``).
Every release is idempotent: releasing what is not there does nothing. A release has taken
effect when it returns (the mount is out of the mount table, the directory out of the
container's tree); tearing down the filesystem or freeing the blocks is deferred.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pathlib
import posixpath
import stat
from collections.abc import Mapping
from typing import Any

from engine import linux
from engine.container_config import parse_mount
from engine.errors import InvalidParameter, System
from engine.host import Handle, Resource
from engine.image import ImageStore, copy_tree
from engine.oci_spec import build_spec, container_hostname, in_root, spec_json
from engine.store import ContainerRecord
from engine.sweeper import Sweeper
from engine.volume import ANONYMOUS, data_path

SHM_SIZE = "65536k"
DRAIN_SECONDS = 60.0
# Beside a volume's _data while it is filled: a copy being made, and a complete one.
_FILLING = ".filling-"
_FILLED = ".filled"

log = logging.getLogger("berth.host")


class LinuxHost:
    def __init__(self, root: pathlib.Path, images: ImageStore) -> None:
        self.root = root
        self._root = str(root)  # paths are built as strings: pathlib cost ~2 ms a container
        self.images = images
        for directory in ("containers", "netns", "volumes"):
            (root / directory).mkdir(parents=True, exist_ok=True)
        self.sweeper = Sweeper(root / "trash")

    def drain(self) -> None:
        """Finish the deferred work (a daemon that stops, a test that checks for leaks)."""
        if not self.sweeper.drain(timeout=DRAIN_SECONDS):
            log.warning("deferred releases still running after %.0f s", DRAIN_SECONDS)

    def container_dir(self, container_id: str) -> pathlib.Path:
        return self.root / "containers" / container_id

    # -- plan ----------------------------------------------------------------------------
    def plan(self, resource: Resource, container: ContainerRecord) -> Handle | None:
        base = f"{self._root}/containers/{container.id}"
        config = container.config
        if resource is Resource.ROOTFS:
            digest = str(config.get("image_digest", ""))
            if not digest:
                raise InvalidParameter(f"container {container.id} has no image")
            return {"path": f"{base}/rootfs", "lower": self.images.rootfs(digest),
                    "upper": f"{base}/upper", "work": f"{base}/work"}
        if resource is Resource.NETWORK:
            if config.get("network_mode", "none") == "host":
                return None
            return {"netns": f"{self._root}/netns/{container.id}"}
        if resource is Resource.IPC:
            # moby's setupIpcDirs: none when the user mounts something on /dev/shm.
            if any(posixpath.normpath(parse_mount(spec)["destination"]) == "/dev/shm"
                   for spec in config.get("mounts") or []):
                return None
            return {"path": f"{base}/shm"}
        if resource is Resource.SECRETS:
            return {"path": f"{base}/secrets"} if config.get("secrets") else None
        if resource is Resource.VOLUMES:
            mounts = [self._volume(spec) for spec in config.get("mounts") or []]
            anonymous = set(config.get("anonymous_volumes") or [])
            for mount in mounts:
                if mount["volume"] in anonymous:
                    mount["anonymous"] = True
            return {"mounts": mounts} if mounts else None
        return {"bundle": f"{base}/bundle"}

    def _volume(self, spec: str) -> dict[str, Any]:
        mount = dict(parse_mount(spec))
        source = str(mount["source"])
        if source.startswith("/"):
            mount["volume"] = None
        else:
            mount["volume"] = source
            mount["source"] = data_path(f"{self._root}/volumes", source)
        return mount

    # -- acquire -------------------------------------------------------------------------
    def acquire(self, resource: Resource, container: ContainerRecord, handle: Handle,
                acquired: Mapping[Resource, Handle]) -> Handle:
        try:
            if resource is Resource.ROOTFS:
                self._mount_rootfs(handle)
            elif resource is Resource.NETWORK:
                self._allocate_sandbox(str(handle["netns"]))
            elif resource is Resource.IPC:
                self._tmpfs(str(handle["path"]), f"mode=1777,size={SHM_SIZE}")
            elif resource is Resource.SECRETS:
                self._secrets(str(handle["path"]), container.config.get("secrets") or [])
            elif resource is Resource.VOLUMES:
                for mount in handle["mounts"]:
                    # Docker's -v: a missing host path becomes a directory; a volume that
                    # is new or empty is filled from the container's files; anything else,
                    # a file included, is bound as it is.
                    if mount.get("volume"):
                        # moby fills at the container's create (populateVolumes), so at its
                        # first start here, never again: what it emptied stays empty.
                        self._prepare_volume(mount, None if container.has_been_started_before
                                             else acquired.get(Resource.ROOTFS))
                    elif not os.path.lexists(mount["source"]):
                        os.makedirs(mount["source"], exist_ok=True)
                    self._check_propagation(mount)
            else:
                self._write_bundle(container, handle, acquired)
        except OSError as exc:
            raise System(f"{resource.value}: {exc}") from exc
        return handle

    def _prepare_volume(self, mount: Mapping[str, Any], rootfs: Handle | None) -> None:
        """Make the volume's ``_data`` and, when it is new or empty and there is a
        ``rootfs`` to fill it from (the container's first start), fill it as moby's
        copyExistingContents does: what the container's filesystem holds at its destination
        (a directory, looked up inside the container's root), owners and modes included,
        the directory's own too (not with ``nocopy``). Under the volume's flock: two starts
        of containers sharing it fill it once, and a fill a crash interrupted is finished by
        the next start that mounts the volume (see ``_fill_volume``)."""
        data = str(mount["source"])
        volume = os.path.dirname(data)
        os.makedirs(volume, exist_ok=True)
        held = os.open(volume, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(held, fcntl.LOCK_EX)
            if mount.get("anonymous"):  # Docker's label: rm -v and volume prune take it
                os.close(os.open(f"{volume}/{ANONYMOUS}",
                                 os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            for name in os.listdir(volume):  # a copy a crash interrupted: made again
                if name.startswith(_FILLING):
                    self.sweeper.discard(f"{volume}/{name}")
            if os.path.lexists(f"{volume}/{_FILLED}"):  # copied, not all moved in: finished
                self._move_in(f"{volume}/{_FILLED}", data)
            empty = not os.path.lexists(data) or (os.path.isdir(data) and not os.listdir(data))
            if empty and rootfs is not None and "nocopy" not in mount.get("modes", []):
                self._fill_volume(volume, data,
                                  in_root(str(rootfs["path"]), str(mount["destination"])))
            os.makedirs(data, exist_ok=True)
        finally:
            os.close(held)  # and its lock

    def _fill_volume(self, volume: str, data: str, source: str) -> None:
        """Copy ``source`` beside ``data`` (``.filling-*``: a crash mid-copy leaves it to be
        deleted), mark the copy complete by its name (``.filled``), then move it in: renamed
        into place when there is no ``data`` yet, else (an empty one, maybe bound in a
        running container already) moved in entry by entry, which a crash may interrupt and
        the next fill finishes (``_move_in``)."""
        try:
            opened = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return  # nothing there, or not a directory: an empty volume, as Docker's
        staging = f"{volume}/{_FILLING}{os.urandom(6).hex()}"
        try:
            copy_tree(opened, staging)
        except BaseException:
            self.sweeper.discard(staging)
            raise
        finally:
            os.close(opened)
        if not os.path.lexists(data):
            os.rename(staging, data)
            return
        filled = f"{volume}/{_FILLED}"
        os.rename(staging, filled)
        self._move_in(filled, data)

    def _move_in(self, filled: str, data: str) -> None:
        """Move the entries of the complete copy ``filled`` into ``data``, give ``data`` the
        copied directory's owner and mode, and delete ``filled``. An entry ``data`` has
        already (moved before a crash, or made by a container since) is kept."""
        os.makedirs(data, exist_ok=True)
        for name in os.listdir(filled):
            target = os.path.join(data, name)
            if not os.path.lexists(target):
                os.rename(os.path.join(filled, name), target)
        info = os.stat(filled)
        os.chown(data, info.st_uid, info.st_gid)
        os.chmod(data, stat.S_IMODE(info.st_mode))
        try:
            os.rmdir(filled)
        except OSError:  # what was kept in data: its copies go with the sweeper
            self.sweeper.discard(filled)

    def _check_propagation(self, mount: Mapping[str, Any]) -> None:
        """moby's ensureShared / ensureSharedOrSlave: a bind that asks for shared (slave)
        propagation needs a source on a shared (shared or slave) mount, or the request would
        silently do nothing. A source under the data root, or holding it, is exempt (moby's
        fallback for its own directories)."""
        wanted = mount.get("propagation") or ""
        source = str(mount["source"])
        if wanted not in ("shared", "rshared", "slave", "rslave") or (
                _within(source, self._root) or _within(self._root, source)):
            return
        point, fields = linux.propagation_of(source)
        shared = any(field.startswith("shared:") for field in fields)
        slave = any(field.startswith("master:") for field in fields)
        if wanted in ("shared", "rshared") and not shared:
            raise System(f"path {source} is mounted on {point} but it is not a shared mount")
        if not (shared or slave):
            raise System(
                f"path {source} is mounted on {point} but it is not a shared or slave mount")

    def _allocate_sandbox(self, path: str) -> None:
        """The file the container's network namespace is bound on once the runtime made it
        (``attach_network``). A namespace still bound there (a cleanup that failed) goes."""
        if os.path.ismount(path):
            linux.unmount(path, lazy=True)
        with open(path, "a"):
            pass

    def attach_network(self, container_id: str, handle: Handle, pid: int) -> None:
        try:
            linux.pin_network_namespace(pid, str(handle["netns"]))
        except System as exc:
            raise System(f"network: {exc}") from exc

    def _mount_rootfs(self, handle: Handle) -> None:
        lower = str(handle["lower"])
        if not os.path.isdir(lower):
            raise System(f"image layer {lower} is missing")
        target = str(handle["path"])
        # The overlay this container's last exit detached may still be alive (its teardown
        # queued): it must be gone before another overlay uses the same upper directory.
        self.sweeper.settle(target)
        fresh = _make_directories(str(handle["upper"]), str(handle["work"]), target)
        if not fresh and os.path.ismount(target):
            return
        linux.mount("overlay", target, "overlay", 0,
                    f"lowerdir={lower},upperdir={handle['upper']},workdir={handle['work']}")

    def _tmpfs(self, path: str, options: str) -> None:
        if _make_directories(path) or not os.path.ismount(path):
            linux.mount("tmpfs", path, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, options)

    def _secrets(self, path: str, secrets: list[str]) -> None:
        # Readable by the container's user whoever it is (a swarm secret's default: root,
        # 0444); the host's users cannot reach it (``containers/`` is root's alone).
        self._tmpfs(path, "mode=0755,size=1024k")
        for entry in secrets:
            name, _, value = entry.partition("=")
            secret = pathlib.Path(path, os.path.basename(name))
            secret.write_text(value)
            secret.chmod(0o444)

    def _write_bundle(self, container: ContainerRecord, handle: Handle,
                      acquired: Mapping[Resource, Handle]) -> None:
        bundle = str(handle["bundle"])
        _make_directories(bundle)
        files = resolution_files(bundle, container.id, container.config)
        spec = build_spec(container.id, container.config,
                          {resource.value: value for resource, value in acquired.items()},
                          files)
        # Written in place, not through a rename: nothing reads the bundle before this step
        # is done, and a step a crash interrupted is compensated, its bundle discarded.
        _write_file(f"{bundle}/config.json", spec_json(spec))

    # -- release -------------------------------------------------------------------------
    def release(self, resource: Resource, container_id: str, handle: Handle) -> None:
        try:
            # Detached: the container's processes are gone, so nothing uses the mount; the
            # filesystem's teardown (for an overlay, syncing its upper layer: 6 ms when
            # synchronous, 0.35 ms when lazy, both measured) is left to the sweeper.
            if resource in (Resource.ROOTFS, Resource.IPC, Resource.SECRETS):
                path = str(handle["path"])
                descriptor = linux.detach(path)
                if descriptor is not None:
                    self.sweeper.close_later(descriptor, path)
            elif resource is Resource.NETWORK:
                path = str(handle["netns"])
                linux.unmount(path, lazy=True)
                pathlib.Path(path).unlink(missing_ok=True)
            elif resource is Resource.SPEC:
                self.sweeper.discard(str(handle["bundle"]))
            # VOLUMES: references only; their data stays.
        except OSError as exc:
            raise System(f"release {resource.value}: {exc}") from exc

    def release_all(self, container_id: str) -> None:
        for point in linux.mounts_under(str(self.container_dir(container_id))):
            linux.unmount(point)

    def log_path(self, container_id: str) -> str:
        return str(self.container_dir(container_id) / f"{container_id}-json.log")

    def remove(self, container_id: str, *, volumes: bool) -> None:
        directory = self.container_dir(container_id)
        netns = self.root / "netns" / container_id
        linux.unmount(str(netns))
        netns.unlink(missing_ok=True)
        try:
            self.sweeper.discard(str(directory))  # gone from its path when this returns
        except OSError as exc:  # in Go's words, as moby's: "remove <path>: <errno text>"
            why = exc.strerror or str(exc)
            raise System(f"remove {directory}: {why[:1].lower()}{why[1:]}") from exc


def _within(path: str, top: str) -> bool:
    """``path`` is ``top`` or under it, component by component (``/a/bc`` is not under
    ``/a/b``)."""
    path, top = posixpath.normpath(path), posixpath.normpath(top)
    return path == top or path.startswith(top.rstrip("/") + "/")


# libnetwork's etchosts defaults: the loopback names, IPv4 and IPv6.
_HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
          "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
          "ff02::2\tip6-allrouters\n")
_FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")  # libnetwork's, when the host has none left


def resolution_files(bundle: str, container_id: str, config: Mapping[str, Any]
                      ) -> dict[str, str]:
    """Write the container's /etc/hostname, /etc/hosts and /etc/resolv.conf in its bundle
    (they go with it) and return them by container path, as Docker's daemon makes them: the
    hostname; the loopback names (the host's own file with the host's network); the host's
    resolv.conf, its loopback nameservers left out in a network namespace of the container's
    own (they would be its own loopback there), Google's if none is left."""
    host_network = config.get("network_mode") == "host"
    hosts = _host_file("/etc/hosts") if host_network else _HOSTS
    resolv = _host_file("/etc/resolv.conf")
    if not host_network:
        resolv = _without_loopback_nameservers(resolv)
    contents = {"/etc/hostname": f"{container_hostname(container_id, config)}\n",
                "/etc/hosts": hosts, "/etc/resolv.conf": resolv}
    files = {}
    for destination, content in contents.items():
        path = f"{bundle}/{os.path.basename(destination)}"
        _write_file(path, content)
        files[destination] = path
    return files


def _write_file(path: str, content: str) -> None:
    """Write ``content`` to ``path`` (created 0644, or truncated)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        data = content.encode()
        while data:
            data = data[os.write(descriptor, data):]
    finally:
        os.close(descriptor)


def _host_file(path: str) -> str:
    """The host's ``path`` (its first 64 KiB, as Docker's resolv.conf reader bounds it)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        return os.read(descriptor, 1 << 16).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(descriptor)


def _without_loopback_nameservers(content: str) -> str:
    lines = []
    servers = 0
    for line in content.splitlines():
        fields = line.split()
        if fields[:1] == ["nameserver"] and len(fields) > 1:
            if fields[1].startswith("127.") or fields[1] == "::1":
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += [f"nameserver {server}" for server in _FALLBACK_NAMESERVERS]
    return "".join(f"{line}\n" for line in lines)


def _make_directories(*paths: str) -> bool:
    """Create ``paths`` (and their parents); True if the last one is new. Cheaper than
    ``os.makedirs`` for the directories a start creates again each time."""
    created = False
    for path in paths:
        try:
            os.mkdir(path)
            created = True
        except FileExistsError:
            created = False
        except FileNotFoundError:
            os.makedirs(path)
            created = True
    return created
