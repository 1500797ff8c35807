"""The composition root: builds an engine from a data root; nothing else wires parts together.

Layout of a data root (``BERTH_ROOT``, default ``/var/lib/berth``):
``berth.db`` (the journal, unless ``BERTH_DB`` names another file), ``fake/`` (the state of the
in-process runtime and host while no real runtime is configured).
"""

from __future__ import annotations

import os
import pathlib

from engine.config import ConfigSnapshot, ConfigStore
from engine.errors import InvalidParameter
from engine.event import EventBus
from engine.failpoint import Failpoints
from engine.host import Host
from engine.image import ImageStore
from engine.recovery import Recovery, RecoveryReport
from engine.runtime import OCIRuntime
from engine.saga import SagaContext
from engine.service import Engine
from engine.store import Database, Durability
from engine.store.database import MEMORY
from engine.testing import FakeHost, FakeRuntime
from engine.volume import VolumeStore

DEFAULT_ROOT = "/var/lib/berth"
DB_FILE = "berth.db"
# What only root may enter (Docker's 0710/0711 data root since 20.10.9, CVE-2021-41091): a
# container's upper layer, rootfs and /dev/shm, volumes, images and logs hold setuid files
# and data of every container. The root itself stays traversable for the socket.
PRIVATE_DIRECTORIES = ("containers", "images", "volumes", "netns", "runc", "exits", "trash")
ROOT_MODE = 0o711


def default_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get("BERTH_ROOT", DEFAULT_ROOT))


def database_path(root: pathlib.Path) -> str:
    return os.environ.get("BERTH_DB") or str(root / DB_FILE)


def seal(base: pathlib.Path, database: str) -> None:
    """Create the data root, traversable only, with its private directories (root's alone),
    and the database file if it is missing, 0600 (SQLite gives its -wal and -shm the mode of
    the database). What an older version made in the root is tightened the same way; a
    database elsewhere (``BERTH_DB``) that exists keeps the mode its owner gave it."""
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, ROOT_MODE)
    for name in PRIVATE_DIRECTORIES:
        directory = base / name
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
    if database != MEMORY:
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    default = base / DB_FILE
    for path in (default, base / f"{DB_FILE}-wal", base / f"{DB_FILE}-shm"):
        if path.exists():
            os.chmod(path, 0o600)


def open_engine(
    root: str | os.PathLike[str] | None = None,
    *,
    db_path: str | None = None,
    runtime: OCIRuntime | None = None,
    host: Host | None = None,
    failpoints: Failpoints | None = None,
    config: ConfigSnapshot | None = None,
    durability: Durability | None = None,
    recover: bool = True,
    backend: str | None = None,
) -> tuple[Engine, RecoveryReport | None]:
    """Open (creating if needed) the engine over ``root``; run recovery unless told not to.

    ``backend`` (default ``$BERTH_BACKEND``, else ``runc``): ``runc`` drives real containers
    (overlay rootfs, namespaces, the supervisor); ``fake`` the in-process fakes, their state kept
    under ``<root>/fake``. Explicit ``runtime`` and ``host`` win over the backend's (both
    given and no backend named: ``fake``, with no image store).
    """
    base = pathlib.Path(root) if root is not None else default_root()
    path = db_path or database_path(base)
    seal(base, path)
    sync = durability or os.environ.get("BERTH_DB_SYNC", "normal")
    database = Database(path, durability=sync)  # type: ignore[arg-type]
    if backend is None and runtime is not None and host is not None:
        backend = "fake"  # the caller composed its own parts: no image store to resolve
    kind = backend or os.environ.get("BERTH_BACKEND", "runc")
    images: ImageStore | None = None
    volumes: VolumeStore | None = None
    if kind == "runc":
        from engine.linux_host import LinuxHost
        from engine.runc import RuncRuntime
        from engine.supervisor import SupervisorClient

        images = ImageStore(base, database)
        if runtime is None:
            supervisor = SupervisorClient(base)
            supervisor.ensure_running()
            runtime = RuncRuntime(base, supervisor)
        if host is None:
            host = LinuxHost(base, images)
        if isinstance(host, LinuxHost):
            volumes = VolumeStore(base, database, images.in_use(), host.sweeper)
    elif kind != "fake":
        database.close()
        raise InvalidParameter(f"unknown backend {kind!r} (runc or fake)")
    saga = SagaContext(
        db=database,
        runtime=runtime if runtime is not None else FakeRuntime(base / "fake" / "runtime"),
        host=host if host is not None else FakeHost(str(base), base / "fake" / "host"),
        failpoints=failpoints if failpoints is not None else Failpoints.from_environment(),
        events=EventBus(),
    )
    engine = Engine(saga, ConfigStore(config), images, volumes)
    report = Recovery(engine).run() if recover else None
    return engine, report
