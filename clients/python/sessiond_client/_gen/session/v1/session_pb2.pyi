import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATE_UNSPECIFIED: _ClassVar[SessionState]
    SESSION_STATE_ACTIVE: _ClassVar[SessionState]
    SESSION_STATE_REVOKED: _ClassVar[SessionState]
    SESSION_STATE_EXPIRED: _ClassVar[SessionState]

class EndReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    END_REASON_UNSPECIFIED: _ClassVar[EndReason]
    END_REASON_LOGOUT: _ClassVar[EndReason]
    END_REASON_LOGOUT_ALL: _ClassVar[EndReason]
    END_REASON_LOGOUT_OTHERS: _ClassVar[EndReason]
    END_REASON_ADMIN_REVOKE: _ClassVar[EndReason]
    END_REASON_BULK_REVOKE: _ClassVar[EndReason]
    END_REASON_LIMIT_EVICTED: _ClassVar[EndReason]
    END_REASON_REFRESH_REUSE: _ClassVar[EndReason]
    END_REASON_IDLE_TIMEOUT: _ClassVar[EndReason]
    END_REASON_LIFESPAN_END: _ClassVar[EndReason]
    END_REASON_ABSOLUTE_CAP: _ClassVar[EndReason]
    END_REASON_USER_NOT_BEFORE: _ClassVar[EndReason]
    END_REASON_BINDING_VIOLATION: _ClassVar[EndReason]

class SessionEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_EVENT_KIND_UNSPECIFIED: _ClassVar[SessionEventKind]
    SESSION_EVENT_KIND_STARTED: _ClassVar[SessionEventKind]
    SESSION_EVENT_KIND_REFRESHED: _ClassVar[SessionEventKind]
    SESSION_EVENT_KIND_EXTENDED: _ClassVar[SessionEventKind]
    SESSION_EVENT_KIND_REVOKED: _ClassVar[SessionEventKind]
    SESSION_EVENT_KIND_EXPIRED: _ClassVar[SessionEventKind]
    SESSION_EVENT_KIND_REUSE_DETECTED: _ClassVar[SessionEventKind]
    SESSION_EVENT_KIND_CAUGHT_UP: _ClassVar[SessionEventKind]
SESSION_STATE_UNSPECIFIED: SessionState
SESSION_STATE_ACTIVE: SessionState
SESSION_STATE_REVOKED: SessionState
SESSION_STATE_EXPIRED: SessionState
END_REASON_UNSPECIFIED: EndReason
END_REASON_LOGOUT: EndReason
END_REASON_LOGOUT_ALL: EndReason
END_REASON_LOGOUT_OTHERS: EndReason
END_REASON_ADMIN_REVOKE: EndReason
END_REASON_BULK_REVOKE: EndReason
END_REASON_LIMIT_EVICTED: EndReason
END_REASON_REFRESH_REUSE: EndReason
END_REASON_IDLE_TIMEOUT: EndReason
END_REASON_LIFESPAN_END: EndReason
END_REASON_ABSOLUTE_CAP: EndReason
END_REASON_USER_NOT_BEFORE: EndReason
END_REASON_BINDING_VIOLATION: EndReason
SESSION_EVENT_KIND_UNSPECIFIED: SessionEventKind
SESSION_EVENT_KIND_STARTED: SessionEventKind
SESSION_EVENT_KIND_REFRESHED: SessionEventKind
SESSION_EVENT_KIND_EXTENDED: SessionEventKind
SESSION_EVENT_KIND_REVOKED: SessionEventKind
SESSION_EVENT_KIND_EXPIRED: SessionEventKind
SESSION_EVENT_KIND_REUSE_DETECTED: SessionEventKind
SESSION_EVENT_KIND_CAUGHT_UP: SessionEventKind

class Session(_message.Message):
    __slots__ = ("session_id", "user_id", "group", "state", "created_at", "authenticated_at", "last_access_at", "expires_at", "max_expires_at", "ttl_seconds", "metadata", "attributes", "scope", "aal", "token_attributes", "external_user_id", "client", "last_ip", "last_user_agent", "last_seen_at", "end_reason", "started_by", "device_key_thumbprint")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TokenAttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ACCESS_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    AAL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    LAST_IP_FIELD_NUMBER: _ClassVar[int]
    LAST_USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_BY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_KEY_THUMBPRINT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    group: str
    state: SessionState
    created_at: _timestamp_pb2.Timestamp
    authenticated_at: _timestamp_pb2.Timestamp
    last_access_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    max_expires_at: _timestamp_pb2.Timestamp
    ttl_seconds: int
    metadata: _containers.ScalarMap[str, str]
    attributes: _containers.ScalarMap[str, str]
    scope: str
    aal: str
    token_attributes: _containers.ScalarMap[str, str]
    external_user_id: str
    client: ClientContext
    last_ip: str
    last_user_agent: str
    last_seen_at: _timestamp_pb2.Timestamp
    end_reason: EndReason
    started_by: str
    device_key_thumbprint: str
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., group: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., authenticated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_access_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ttl_seconds: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., scope: _Optional[str] = ..., aal: _Optional[str] = ..., token_attributes: _Optional[_Mapping[str, str]] = ..., external_user_id: _Optional[str] = ..., client: _Optional[_Union[ClientContext, _Mapping]] = ..., last_ip: _Optional[str] = ..., last_user_agent: _Optional[str] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_reason: _Optional[_Union[EndReason, str]] = ..., started_by: _Optional[str] = ..., device_key_thumbprint: _Optional[str] = ...) -> None: ...

class ClientContext(_message.Message):
    __slots__ = ("ip", "user_agent", "device_id", "device_label")
    IP_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_LABEL_FIELD_NUMBER: _ClassVar[int]
    ip: str
    user_agent: str
    device_id: str
    device_label: str
    def __init__(self, ip: _Optional[str] = ..., user_agent: _Optional[str] = ..., device_id: _Optional[str] = ..., device_label: _Optional[str] = ...) -> None: ...

class StartRequest(_message.Message):
    __slots__ = ("user_id", "group", "ttl_seconds", "metadata", "attributes", "scope", "token_attributes", "issue_id_token", "external_user_id", "client", "device_key")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TokenAttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ISSUE_ID_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    group: str
    ttl_seconds: int
    metadata: _containers.ScalarMap[str, str]
    attributes: _containers.ScalarMap[str, str]
    scope: str
    token_attributes: _containers.ScalarMap[str, str]
    issue_id_token: bool
    external_user_id: str
    client: ClientContext
    device_key: str
    def __init__(self, user_id: _Optional[str] = ..., group: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., scope: _Optional[str] = ..., token_attributes: _Optional[_Mapping[str, str]] = ..., issue_id_token: _Optional[bool] = ..., external_user_id: _Optional[str] = ..., client: _Optional[_Union[ClientContext, _Mapping]] = ..., device_key: _Optional[str] = ...) -> None: ...

class StartResponse(_message.Message):
    __slots__ = ("session", "session_token", "refresh_token", "expires_in_seconds", "access_token", "access_token_expires_in_seconds", "id_token")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ID_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session: Session
    session_token: str
    refresh_token: str
    expires_in_seconds: int
    access_token: str
    access_token_expires_in_seconds: int
    id_token: str
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., session_token: _Optional[str] = ..., refresh_token: _Optional[str] = ..., expires_in_seconds: _Optional[int] = ..., access_token: _Optional[str] = ..., access_token_expires_in_seconds: _Optional[int] = ..., id_token: _Optional[str] = ...) -> None: ...

class RefreshRequest(_message.Message):
    __slots__ = ("refresh_token", "scope", "issue_id_token", "client")
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ISSUE_ID_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    refresh_token: str
    scope: str
    issue_id_token: bool
    client: ClientContext
    def __init__(self, refresh_token: _Optional[str] = ..., scope: _Optional[str] = ..., issue_id_token: _Optional[bool] = ..., client: _Optional[_Union[ClientContext, _Mapping]] = ...) -> None: ...

class RefreshResponse(_message.Message):
    __slots__ = ("session", "session_token", "refresh_token", "expires_in_seconds", "access_token", "access_token_expires_in_seconds", "id_token")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ID_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session: Session
    session_token: str
    refresh_token: str
    expires_in_seconds: int
    access_token: str
    access_token_expires_in_seconds: int
    id_token: str
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., session_token: _Optional[str] = ..., refresh_token: _Optional[str] = ..., expires_in_seconds: _Optional[int] = ..., access_token: _Optional[str] = ..., access_token_expires_in_seconds: _Optional[int] = ..., id_token: _Optional[str] = ...) -> None: ...

class ExtendRequest(_message.Message):
    __slots__ = ("session_id", "keep_alive_seconds")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    keep_alive_seconds: int
    def __init__(self, session_id: _Optional[str] = ..., keep_alive_seconds: _Optional[int] = ...) -> None: ...

class ExtendResponse(_message.Message):
    __slots__ = ("session", "extended")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    EXTENDED_FIELD_NUMBER: _ClassVar[int]
    session: Session
    extended: bool
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., extended: _Optional[bool] = ...) -> None: ...

class WhoamiRequest(_message.Message):
    __slots__ = ("session_token", "client")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    client: ClientContext
    def __init__(self, session_token: _Optional[str] = ..., client: _Optional[_Union[ClientContext, _Mapping]] = ...) -> None: ...

class WhoamiResponse(_message.Message):
    __slots__ = ("session", "expires_in_seconds", "cache_until")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CACHE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    session: Session
    expires_in_seconds: int
    cache_until: _timestamp_pb2.Timestamp
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., expires_in_seconds: _Optional[int] = ..., cache_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ("session_token", "session_id", "all_for_user", "except_session_id", "user_id", "external_user_id")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_FOR_USER_FIELD_NUMBER: _ClassVar[int]
    EXCEPT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_USER_ID_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    session_id: str
    all_for_user: bool
    except_session_id: str
    user_id: str
    external_user_id: str
    def __init__(self, session_token: _Optional[str] = ..., session_id: _Optional[str] = ..., all_for_user: _Optional[bool] = ..., except_session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., external_user_id: _Optional[str] = ...) -> None: ...

class LogoutResponse(_message.Message):
    __slots__ = ("revoked_count",)
    REVOKED_COUNT_FIELD_NUMBER: _ClassVar[int]
    revoked_count: int
    def __init__(self, revoked_count: _Optional[int] = ...) -> None: ...

class RefreshAllForUserRequest(_message.Message):
    __slots__ = ("user_id", "keep_alive_seconds", "external_user_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    keep_alive_seconds: int
    external_user_id: str
    def __init__(self, user_id: _Optional[str] = ..., keep_alive_seconds: _Optional[int] = ..., external_user_id: _Optional[str] = ...) -> None: ...

class RefreshAllForUserResponse(_message.Message):
    __slots__ = ("refreshed_count", "sessions")
    REFRESHED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    refreshed_count: int
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, refreshed_count: _Optional[int] = ..., sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ...) -> None: ...

class ListUserSessionsRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token", "include_inactive")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_INACTIVE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    include_inactive: bool
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_inactive: _Optional[bool] = ...) -> None: ...

class ListUserSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchSessionsRequest(_message.Message):
    __slots__ = ("after_cursor", "user_id")
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    after_cursor: int
    user_id: str
    def __init__(self, after_cursor: _Optional[int] = ..., user_id: _Optional[str] = ...) -> None: ...

class SessionEvent(_message.Message):
    __slots__ = ("cursor", "kind", "session_id", "user_id", "at", "end_reason", "actor", "reason")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    kind: SessionEventKind
    session_id: str
    user_id: str
    at: _timestamp_pb2.Timestamp
    end_reason: EndReason
    actor: str
    reason: str
    def __init__(self, cursor: _Optional[int] = ..., kind: _Optional[_Union[SessionEventKind, str]] = ..., session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_reason: _Optional[_Union[EndReason, str]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReauthenticateRequest(_message.Message):
    __slots__ = ("session_id", "session_token", "aal", "device_key")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AAL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_KEY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    session_token: str
    aal: str
    device_key: str
    def __init__(self, session_id: _Optional[str] = ..., session_token: _Optional[str] = ..., aal: _Optional[str] = ..., device_key: _Optional[str] = ...) -> None: ...

class ReauthenticateResponse(_message.Message):
    __slots__ = ("session", "expires_in_seconds")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    session: Session
    expires_in_seconds: int
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class UpdateAttributesRequest(_message.Message):
    __slots__ = ("session_id", "set", "remove", "token_set", "token_remove")
    class SetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TokenSetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SET_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REMOVE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    set: _containers.ScalarMap[str, str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    token_set: _containers.ScalarMap[str, str]
    token_remove: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., set: _Optional[_Mapping[str, str]] = ..., remove: _Optional[_Iterable[str]] = ..., token_set: _Optional[_Mapping[str, str]] = ..., token_remove: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateAttributesResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class GetJwksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetJwksResponse(_message.Message):
    __slots__ = ("jwks_json",)
    JWKS_JSON_FIELD_NUMBER: _ClassVar[int]
    jwks_json: str
    def __init__(self, jwks_json: _Optional[str] = ...) -> None: ...

class RotateSigningKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateSigningKeyResponse(_message.Message):
    __slots__ = ("kid",)
    KID_FIELD_NUMBER: _ClassVar[int]
    kid: str
    def __init__(self, kid: _Optional[str] = ...) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackupChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ListRevocationsRequest(_message.Message):
    __slots__ = ("after_cursor", "page_size")
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    after_cursor: int
    page_size: int
    def __init__(self, after_cursor: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class Revocation(_message.Message):
    __slots__ = ("session_id", "user_id", "revoked_at", "not_after")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    revoked_at: _timestamp_pb2.Timestamp
    not_after: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListRevocationsResponse(_message.Message):
    __slots__ = ("revocations", "cursor", "caught_up", "window")
    REVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    revocations: _containers.RepeatedCompositeFieldContainer[Revocation]
    cursor: int
    caught_up: bool
    window: _duration_pb2.Duration
    def __init__(self, revocations: _Optional[_Iterable[_Union[Revocation, _Mapping]]] = ..., cursor: _Optional[int] = ..., caught_up: _Optional[bool] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RevokeUserSessionsRequest(_message.Message):
    __slots__ = ("user_id", "external_user_id", "not_before")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_USER_ID_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    external_user_id: str
    not_before: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., external_user_id: _Optional[str] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RevokeUserSessionsResponse(_message.Message):
    __slots__ = ("revoked_count",)
    REVOKED_COUNT_FIELD_NUMBER: _ClassVar[int]
    revoked_count: int
    def __init__(self, revoked_count: _Optional[int] = ...) -> None: ...

class SessionFilter(_message.Message):
    __slots__ = ("user_id", "group", "state", "created_after", "created_before", "last_seen_after", "last_seen_before", "ip", "device_id", "aal", "started_by")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AFTER_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_BEFORE_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    AAL_FIELD_NUMBER: _ClassVar[int]
    STARTED_BY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    group: str
    state: SessionState
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    last_seen_after: _timestamp_pb2.Timestamp
    last_seen_before: _timestamp_pb2.Timestamp
    ip: str
    device_id: str
    aal: str
    started_by: str
    def __init__(self, user_id: _Optional[str] = ..., group: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ip: _Optional[str] = ..., device_id: _Optional[str] = ..., aal: _Optional[str] = ..., started_by: _Optional[str] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: SessionFilter
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[_Union[SessionFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeSessionsRequest(_message.Message):
    __slots__ = ("filter", "all", "dry_run", "reason", "max_sessions")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    filter: SessionFilter
    all: bool
    dry_run: bool
    reason: str
    max_sessions: int
    def __init__(self, filter: _Optional[_Union[SessionFilter, _Mapping]] = ..., all: _Optional[bool] = ..., dry_run: _Optional[bool] = ..., reason: _Optional[str] = ..., max_sessions: _Optional[int] = ...) -> None: ...

class RevokeSessionsResponse(_message.Message):
    __slots__ = ("matched_count", "revoked_count", "session_ids")
    MATCHED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SESSION_IDS_FIELD_NUMBER: _ClassVar[int]
    matched_count: int
    revoked_count: int
    session_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, matched_count: _Optional[int] = ..., revoked_count: _Optional[int] = ..., session_ids: _Optional[_Iterable[str]] = ...) -> None: ...
