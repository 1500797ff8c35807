from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class HistoryEvent(_message.Message):
    __slots__ = ("seq", "container_id", "container_name", "container_seq", "event", "from_state", "to_state", "step", "outcome", "error", "error_class", "actor", "request_id", "at_ms", "image", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    seq: int
    container_id: str
    container_name: str
    container_seq: int
    event: str
    from_state: str
    to_state: str
    step: str
    outcome: str
    error: str
    error_class: str
    actor: str
    request_id: str
    at_ms: int
    image: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, seq: _Optional[int] = ..., container_id: _Optional[str] = ..., container_name: _Optional[str] = ..., container_seq: _Optional[int] = ..., event: _Optional[str] = ..., from_state: _Optional[str] = ..., to_state: _Optional[str] = ..., step: _Optional[str] = ..., outcome: _Optional[str] = ..., error: _Optional[str] = ..., error_class: _Optional[str] = ..., actor: _Optional[str] = ..., request_id: _Optional[str] = ..., at_ms: _Optional[int] = ..., image: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...
