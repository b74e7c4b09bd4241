"""The request of each call, built from the wrapper's arguments: one place for the sync
and the asyncio ``SessionClient``, which only differ in how they send it."""

from __future__ import annotations

from collections.abc import Mapping

from sessiond_client._gen.session.v1 import session_pb2
from sessiond_client.binding import DeviceKey

#: Sessions asked for per ListUserSessions page.
LIST_PAGE_SIZE = 100


def start(
    user_id: str,
    group: str | None,
    ttl_seconds: int | None,
    metadata: Mapping[str, str] | None,
    attributes: Mapping[str, str] | None,
    client: session_pb2.ClientContext | None,
    device_key: DeviceKey | str | None = None,
) -> session_pb2.StartRequest:
    if isinstance(device_key, DeviceKey):
        device_key = device_key.public_jwk_json()
    request = session_pb2.StartRequest(
        user_id=user_id,
        group=group or "",
        metadata=dict(metadata or {}),
        attributes=dict(attributes or {}),
        client=client,
        device_key=device_key or "",
    )
    if ttl_seconds is not None:
        request.ttl_seconds = ttl_seconds
    return request


def whoami(
    session_token: str, client: session_pb2.ClientContext | None
) -> session_pb2.WhoamiRequest:
    return session_pb2.WhoamiRequest(session_token=session_token, client=client)


def refresh(refresh_token: str) -> session_pb2.RefreshRequest:
    return session_pb2.RefreshRequest(refresh_token=refresh_token)


def extend(session_id: str, keep_alive_seconds: int | None) -> session_pb2.ExtendRequest:
    request = session_pb2.ExtendRequest(session_id=session_id)
    if keep_alive_seconds is not None:
        request.keep_alive_seconds = keep_alive_seconds
    return request


def logout(
    session_token: str | None,
    session_id: str | None,
    all_for_user: bool,
    except_session_id: str | None,
) -> session_pb2.LogoutRequest:
    return session_pb2.LogoutRequest(
        session_token=session_token or "",
        session_id=session_id or "",
        all_for_user=all_for_user,
        except_session_id=except_session_id or "",
    )


def refresh_all_for_user(
    user_id: str, keep_alive_seconds: int | None
) -> session_pb2.RefreshAllForUserRequest:
    request = session_pb2.RefreshAllForUserRequest(user_id=user_id)
    if keep_alive_seconds is not None:
        request.keep_alive_seconds = keep_alive_seconds
    return request


def base_url(target: str, secure: bool) -> str:
    """The URL the proofs of a client of ``target`` name (only their path is compared:
    proxies rewrite scheme and authority)."""
    return f"{'https' if secure else 'http'}://{target}"


def list_user_sessions_page(
    user_id: str, include_inactive: bool, page_token: str
) -> session_pb2.ListUserSessionsRequest:
    return session_pb2.ListUserSessionsRequest(
        user_id=user_id,
        page_size=LIST_PAGE_SIZE,
        page_token=page_token,
        include_inactive=include_inactive,
    )
