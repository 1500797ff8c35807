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
from engine.testing import FakeHost, FakeRuntime

DEFAULT_ROOT = "/var/lib/berth"
DB_FILE = "berth.db"


def default_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get("BERTH_ROOT", DEFAULT_ROOT))


def database_path(root: pathlib.Path) -> str:
    return os.environ.get("BERTH_DB") or str(root / DB_FILE)


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
    base.mkdir(parents=True, exist_ok=True)
    sync = durability or os.environ.get("BERTH_DB_SYNC", "normal")
    database = Database(db_path or database_path(base), durability=sync)  # type: ignore[arg-type]
    if backend is None and runtime is not None and host is not None:
        backend = "fake"  # the caller composed its own parts: no image store to resolve
    kind = backend or os.environ.get("BERTH_BACKEND", "runc")
    images: ImageStore | None = None
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
    engine = Engine(saga, ConfigStore(config), images)
    report = Recovery(engine).run() if recover else None
    return engine, report
