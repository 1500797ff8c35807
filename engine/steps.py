"""The step catalogue: every journaled step of every operation, in execution order.

Step names are stable journal keys (stored in ``operation_steps.name``, ``history.step`` and
failpoint names); renaming one is a schema change. A failpoint ``<operation>.<step>`` fires
before each step's side effect and ``<operation>.<step>.after`` after it (and
``INNER_FAILPOINTS`` between two side effects of one step).
"""

from __future__ import annotations

# Moby's start phases C1-C13 (spec section 2), in moby's order.
MOUNT_ROOTFS = "mount_rootfs"
SETUP_NETWORK = "setup_network"
CREATE_SPEC = "create_spec"
RESET_RESTART_MANAGER = "reset_restart_manager"
SAVE_APPARMOR_PROFILE = "save_apparmor_profile"
RESOLVE_CHECKPOINT = "resolve_checkpoint"
RESOLVE_RUNTIME = "resolve_runtime"
CREATE_RUNTIME_CONTAINER = "create_runtime_container"
START_TASK = "start_task"
MARK_RUNNING = "mark_running"
INIT_HEALTH = "init_health"
PERSIST = "persist"
EMIT_EVENT = "emit_event"

START_STEPS: tuple[str, ...] = (
    MOUNT_ROOTFS,
    SETUP_NETWORK,
    CREATE_SPEC,
    RESET_RESTART_MANAGER,
    SAVE_APPARMOR_PROFILE,
    RESOLVE_CHECKPOINT,
    RESOLVE_RUNTIME,
    CREATE_RUNTIME_CONTAINER,
    START_TASK,
    MARK_RUNNING,
    INIT_HEALTH,
    PERSIST,
    EMIT_EVENT,
)

# Steps whose side effect acquires something outside the database: each one's intent, with
# its planned handle, is committed before the side effect runs.
ACQUIRING_STEPS = frozenset(
    {MOUNT_ROOTFS, SETUP_NETWORK, CREATE_SPEC, CREATE_RUNTIME_CONTAINER, START_TASK}
)

# Moby's deferred cleanup (spec section 3), in moby's order. ``persist_error`` is 1-3 (record
# the error and exit code, persist), ``reset_streams`` is 4, the unmounts are Cleanup's 5a-5i.
PERSIST_ERROR = "persist_error"
RESET_STREAMS = "reset_streams"
DELETE_RUNTIME_CONTAINER = "delete_runtime_container"
RELEASE_NETWORK = "release_network"
UNMOUNT_IPC = "unmount_ipc"
UNMOUNT_ROOTFS = "unmount_rootfs"
UNMOUNT_SECRETS = "unmount_secrets"
UNMOUNT_RECURSIVE = "unmount_recursive"
UNREGISTER_EXECS = "unregister_execs"
UNMOUNT_VOLUMES = "unmount_volumes"
CANCEL_ATTACH = "cancel_attach"
AUTO_REMOVE = "auto_remove"

CLEANUP_STEPS: tuple[str, ...] = (
    RESET_STREAMS,
    DELETE_RUNTIME_CONTAINER,
    RELEASE_NETWORK,
    UNMOUNT_IPC,
    UNMOUNT_ROOTFS,
    UNMOUNT_SECRETS,
    UNMOUNT_RECURSIVE,
    UNREGISTER_EXECS,
    UNMOUNT_VOLUMES,
    CANCEL_ATTACH,
)

# A failed start: persist the error first, then Cleanup, then auto-remove.
COMPENSATION_STEPS: tuple[str, ...] = (PERSIST_ERROR, *CLEANUP_STEPS, AUTO_REMOVE)

# Removal (moby's containerRm, simplified to what berth owns).
REMOVE_FILES = "remove_files"
REMOVE_STEPS: tuple[str, ...] = (DELETE_RUNTIME_CONTAINER, UNMOUNT_RECURSIVE, REMOVE_FILES)

# Failpoints between two side effects of one step: (operation, step, point), fired as
# ``<operation>.<step>.<point>``. The network namespace the runtime made is bound after
# ``runc create`` returns, inside the create step.
ATTACH_NETWORK = "attach_network"
INNER_FAILPOINTS: tuple[tuple[str, str, str], ...] = (
    ("start", CREATE_RUNTIME_CONTAINER, ATTACH_NETWORK),
)

# Failpoint operations and their steps.
FAILPOINT_OPERATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("start", START_STEPS),
    ("cleanup", COMPENSATION_STEPS),
    ("remove", REMOVE_STEPS),
)


def failpoint_names() -> list[str]:
    """Every failpoint name, in execution order."""
    names: list[str] = []
    for operation, steps in FAILPOINT_OPERATIONS:
        for step in steps:
            names.append(f"{operation}.{step}")
            names.extend(f"{operation}.{step}.{point}" for inner_operation, inner_step, point
                         in INNER_FAILPOINTS if (inner_operation, inner_step) == (operation, step))
            names.append(f"{operation}.{step}.after")
    return names
