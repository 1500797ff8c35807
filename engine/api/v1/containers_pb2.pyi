from engine.api.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContainerConfig(_message.Message):
    __slots__ = ("image", "cmd", "name", "env", "working_dir", "user", "hostname", "network_mode", "mounts", "restart_policy", "restart_max_retries", "auto_remove", "runtime", "secrets", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CMD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    NETWORK_MODE_FIELD_NUMBER: _ClassVar[int]
    MOUNTS_FIELD_NUMBER: _ClassVar[int]
    RESTART_POLICY_FIELD_NUMBER: _ClassVar[int]
    RESTART_MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    AUTO_REMOVE_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    image: str
    cmd: _containers.RepeatedScalarFieldContainer[str]
    name: str
    env: _containers.RepeatedScalarFieldContainer[str]
    working_dir: str
    user: str
    hostname: str
    network_mode: str
    mounts: _containers.RepeatedScalarFieldContainer[str]
    restart_policy: str
    restart_max_retries: int
    auto_remove: bool
    runtime: str
    secrets: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, image: _Optional[str] = ..., cmd: _Optional[_Iterable[str]] = ..., name: _Optional[str] = ..., env: _Optional[_Iterable[str]] = ..., working_dir: _Optional[str] = ..., user: _Optional[str] = ..., hostname: _Optional[str] = ..., network_mode: _Optional[str] = ..., mounts: _Optional[_Iterable[str]] = ..., restart_policy: _Optional[str] = ..., restart_max_retries: _Optional[int] = ..., auto_remove: _Optional[bool] = ..., runtime: _Optional[str] = ..., secrets: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Container(_message.Message):
    __slots__ = ("id", "name", "image", "created_ms", "state", "status", "running", "paused", "restarting", "oom_killed", "dead", "removal_in_progress", "pid", "exit_code", "error", "started_ms", "finished_ms", "restart_count", "runtime", "runtime_binary", "config", "image_digest", "mounts", "log_path", "hostname")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    RESTARTING_FIELD_NUMBER: _ClassVar[int]
    OOM_KILLED_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    REMOVAL_IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_MS_FIELD_NUMBER: _ClassVar[int]
    RESTART_COUNT_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_BINARY_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MOUNTS_FIELD_NUMBER: _ClassVar[int]
    LOG_PATH_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    image: str
    created_ms: int
    state: str
    status: str
    running: bool
    paused: bool
    restarting: bool
    oom_killed: bool
    dead: bool
    removal_in_progress: bool
    pid: int
    exit_code: int
    error: str
    started_ms: int
    finished_ms: int
    restart_count: int
    runtime: str
    runtime_binary: str
    config: ContainerConfig
    image_digest: str
    mounts: _containers.RepeatedCompositeFieldContainer[Mount]
    log_path: str
    hostname: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., image: _Optional[str] = ..., created_ms: _Optional[int] = ..., state: _Optional[str] = ..., status: _Optional[str] = ..., running: _Optional[bool] = ..., paused: _Optional[bool] = ..., restarting: _Optional[bool] = ..., oom_killed: _Optional[bool] = ..., dead: _Optional[bool] = ..., removal_in_progress: _Optional[bool] = ..., pid: _Optional[int] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ..., started_ms: _Optional[int] = ..., finished_ms: _Optional[int] = ..., restart_count: _Optional[int] = ..., runtime: _Optional[str] = ..., runtime_binary: _Optional[str] = ..., config: _Optional[_Union[ContainerConfig, _Mapping]] = ..., image_digest: _Optional[str] = ..., mounts: _Optional[_Iterable[_Union[Mount, _Mapping]]] = ..., log_path: _Optional[str] = ..., hostname: _Optional[str] = ...) -> None: ...

class Mount(_message.Message):
    __slots__ = ("type", "name", "source", "destination", "mode", "rw", "propagation")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RW_FIELD_NUMBER: _ClassVar[int]
    PROPAGATION_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    source: str
    destination: str
    mode: str
    rw: bool
    propagation: str
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., source: _Optional[str] = ..., destination: _Optional[str] = ..., mode: _Optional[str] = ..., rw: _Optional[bool] = ..., propagation: _Optional[str] = ...) -> None: ...

class CreateRequest(_message.Message):
    __slots__ = ("config", "request_id")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    config: ContainerConfig
    request_id: str
    def __init__(self, config: _Optional[_Union[ContainerConfig, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateResponse(_message.Message):
    __slots__ = ("container", "warnings")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    container: Container
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, container: _Optional[_Union[Container, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class StartRequest(_message.Message):
    __slots__ = ("container", "request_id", "checkpoint", "checkpoint_dir")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_DIR_FIELD_NUMBER: _ClassVar[int]
    container: str
    request_id: str
    checkpoint: str
    checkpoint_dir: str
    def __init__(self, container: _Optional[str] = ..., request_id: _Optional[str] = ..., checkpoint: _Optional[str] = ..., checkpoint_dir: _Optional[str] = ...) -> None: ...

class StopRequest(_message.Message):
    __slots__ = ("container", "request_id", "timeout", "signal")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    container: str
    request_id: str
    timeout: int
    signal: int
    def __init__(self, container: _Optional[str] = ..., request_id: _Optional[str] = ..., timeout: _Optional[int] = ..., signal: _Optional[int] = ...) -> None: ...

class KillRequest(_message.Message):
    __slots__ = ("container", "request_id", "signal")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    container: str
    request_id: str
    signal: int
    def __init__(self, container: _Optional[str] = ..., request_id: _Optional[str] = ..., signal: _Optional[int] = ...) -> None: ...

class ContainerRequest(_message.Message):
    __slots__ = ("container", "request_id")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    container: str
    request_id: str
    def __init__(self, container: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RemoveRequest(_message.Message):
    __slots__ = ("container", "request_id", "force", "volumes")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    container: str
    request_id: str
    force: bool
    volumes: bool
    def __init__(self, container: _Optional[str] = ..., request_id: _Optional[str] = ..., force: _Optional[bool] = ..., volumes: _Optional[bool] = ...) -> None: ...

class ChangeResponse(_message.Message):
    __slots__ = ("changed", "container")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    container: Container
    def __init__(self, changed: _Optional[bool] = ..., container: _Optional[_Union[Container, _Mapping]] = ...) -> None: ...

class WaitRequest(_message.Message):
    __slots__ = ("container", "timeout", "condition")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    container: str
    timeout: float
    condition: str
    def __init__(self, container: _Optional[str] = ..., timeout: _Optional[float] = ..., condition: _Optional[str] = ...) -> None: ...

class WaitResponse(_message.Message):
    __slots__ = ("exit_code", "error")
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    exit_code: int
    error: str
    def __init__(self, exit_code: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class InspectRequest(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: str
    def __init__(self, container: _Optional[str] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("all",)
    ALL_FIELD_NUMBER: _ClassVar[int]
    all: bool
    def __init__(self, all: _Optional[bool] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("containers",)
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    containers: _containers.RepeatedCompositeFieldContainer[Container]
    def __init__(self, containers: _Optional[_Iterable[_Union[Container, _Mapping]]] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("container", "follow", "from_start", "tail", "since_ns", "until_ns")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    FROM_START_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_NS_FIELD_NUMBER: _ClassVar[int]
    container: str
    follow: bool
    from_start: bool
    tail: int
    since_ns: int
    until_ns: int
    def __init__(self, container: _Optional[str] = ..., follow: _Optional[bool] = ..., from_start: _Optional[bool] = ..., tail: _Optional[int] = ..., since_ns: _Optional[int] = ..., until_ns: _Optional[int] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("stream", "line", "time")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    stream: str
    line: str
    time: str
    def __init__(self, stream: _Optional[str] = ..., line: _Optional[str] = ..., time: _Optional[str] = ...) -> None: ...

class LogBatch(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LogEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[LogEntry, _Mapping]]] = ...) -> None: ...

class AttachRequest(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: str
    def __init__(self, container: _Optional[str] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ("stream", "data")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    stream: int
    data: bytes
    def __init__(self, stream: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("container",)
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    container: str
    def __init__(self, container: _Optional[str] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_events_pb2.HistoryEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_events_pb2.HistoryEvent, _Mapping]]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("reference", "digest", "size_bytes", "created_ms")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    reference: str
    digest: str
    size_bytes: int
    created_ms: int
    def __init__(self, reference: _Optional[str] = ..., digest: _Optional[str] = ..., size_bytes: _Optional[int] = ..., created_ms: _Optional[int] = ...) -> None: ...

class ImportRequest(_message.Message):
    __slots__ = ("source", "reference", "request_id")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    source: str
    reference: str
    request_id: str
    def __init__(self, source: _Optional[str] = ..., reference: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ImagesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class RemoveImageRequest(_message.Message):
    __slots__ = ("reference", "request_id", "force")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    reference: str
    request_id: str
    force: bool
    def __init__(self, reference: _Optional[str] = ..., request_id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RemoveImageResponse(_message.Message):
    __slots__ = ("untagged", "deleted")
    UNTAGGED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    untagged: _containers.RepeatedScalarFieldContainer[str]
    deleted: str
    def __init__(self, untagged: _Optional[_Iterable[str]] = ..., deleted: _Optional[str] = ...) -> None: ...

class Volume(_message.Message):
    __slots__ = ("name", "mountpoint", "created_ms", "anonymous", "users")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MOUNTPOINT_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    mountpoint: str
    created_ms: int
    anonymous: bool
    users: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., mountpoint: _Optional[str] = ..., created_ms: _Optional[int] = ..., anonymous: _Optional[bool] = ..., users: _Optional[_Iterable[str]] = ...) -> None: ...

class VolumesRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class VolumesResponse(_message.Message):
    __slots__ = ("volumes",)
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    volumes: _containers.RepeatedCompositeFieldContainer[Volume]
    def __init__(self, volumes: _Optional[_Iterable[_Union[Volume, _Mapping]]] = ...) -> None: ...

class CreateVolumeRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RemoveVolumeRequest(_message.Message):
    __slots__ = ("name", "force", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    request_id: str
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class RemoveVolumeResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: bool
    def __init__(self, removed: _Optional[bool] = ...) -> None: ...

class PruneVolumesRequest(_message.Message):
    __slots__ = ("request_id", "all")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    all: bool
    def __init__(self, request_id: _Optional[str] = ..., all: _Optional[bool] = ...) -> None: ...

class PruneVolumesResponse(_message.Message):
    __slots__ = ("removed", "reclaimed_bytes")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    RECLAIMED_BYTES_FIELD_NUMBER: _ClassVar[int]
    removed: _containers.RepeatedScalarFieldContainer[str]
    reclaimed_bytes: int
    def __init__(self, removed: _Optional[_Iterable[str]] = ..., reclaimed_bytes: _Optional[int] = ...) -> None: ...
