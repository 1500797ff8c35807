from engine.api.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Runtime(_message.Message):
    __slots__ = ("name", "binary", "digest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BINARY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    binary: str
    digest: str
    def __init__(self, name: _Optional[str] = ..., binary: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("containers", "running", "paused", "stopped", "images", "data_root", "database", "default_runtime", "runtimes", "config_generation", "backend")
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    DATA_ROOT_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    CONFIG_GENERATION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    containers: int
    running: int
    paused: int
    stopped: int
    images: int
    data_root: str
    database: str
    default_runtime: str
    runtimes: _containers.RepeatedCompositeFieldContainer[Runtime]
    config_generation: int
    backend: str
    def __init__(self, containers: _Optional[int] = ..., running: _Optional[int] = ..., paused: _Optional[int] = ..., stopped: _Optional[int] = ..., images: _Optional[int] = ..., data_root: _Optional[str] = ..., database: _Optional[str] = ..., default_runtime: _Optional[str] = ..., runtimes: _Optional[_Iterable[_Union[Runtime, _Mapping]]] = ..., config_generation: _Optional[int] = ..., backend: _Optional[str] = ...) -> None: ...

class VersionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VersionResponse(_message.Message):
    __slots__ = ("version", "api_version", "python", "sqlite")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_FIELD_NUMBER: _ClassVar[int]
    SQLITE_FIELD_NUMBER: _ClassVar[int]
    version: str
    api_version: str
    python: str
    sqlite: str
    def __init__(self, version: _Optional[str] = ..., api_version: _Optional[str] = ..., python: _Optional[str] = ..., sqlite: _Optional[str] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("generation",)
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    generation: int
    def __init__(self, generation: _Optional[int] = ...) -> None: ...

class EventsRequest(_message.Message):
    __slots__ = ("since_seq", "containers", "events", "docker_only", "since_ms", "until_ms", "new_only", "images")
    SINCE_SEQ_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DOCKER_ONLY_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    NEW_ONLY_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    since_seq: int
    containers: _containers.RepeatedScalarFieldContainer[str]
    events: _containers.RepeatedScalarFieldContainer[str]
    docker_only: bool
    since_ms: int
    until_ms: int
    new_only: bool
    images: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, since_seq: _Optional[int] = ..., containers: _Optional[_Iterable[str]] = ..., events: _Optional[_Iterable[str]] = ..., docker_only: _Optional[bool] = ..., since_ms: _Optional[int] = ..., until_ms: _Optional[int] = ..., new_only: _Optional[bool] = ..., images: _Optional[_Iterable[str]] = ...) -> None: ...
