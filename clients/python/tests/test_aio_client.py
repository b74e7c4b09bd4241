"""The asyncio client (``sessiond_client.aio``) against a real sessiond: the same calls,
answers and errors as the sync client, awaited, and many calls in flight on one loop."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sessiond_client import aio, session_pb2

ACTIVE = session_pb2.SessionState.SESSION_STATE_ACTIVE


async def status_of(call: asyncio.Future[object] | object) -> grpc.StatusCode:
    """The status code the awaitable ``call`` fails with (fails the test if none)."""
    with pytest.raises(grpc.RpcError) as raised:
        await call  # type: ignore[misc]
    # The same catch as for the sync client: an AioRpcError is a grpc.RpcError.
    assert isinstance(raised.value, grpc.aio.AioRpcError)
    return raised.value.code()


async def test_the_whole_lifecycle_awaited(aio_client: aio.SessionClient, user_id: str) -> None:
    started = await aio_client.start(
        user_id, ttl_seconds=600, metadata={"device": "laptop"}, attributes={"role": "admin"}
    )
    session_id = started.session.session_id
    assert started.session.state == ACTIVE
    assert dict(started.session.attributes) == {"role": "admin"}

    me = await aio_client.whoami(started.session_token)
    assert me.session.session_id == session_id

    refreshed = await aio_client.refresh(started.refresh_token)
    assert refreshed.session_token != started.session_token
    assert await status_of(aio_client.whoami(started.session_token)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )

    assert (await aio_client.extend(session_id, keep_alive_seconds=3600)).extended
    everyone = await aio_client.refresh_all_for_user(user_id, keep_alive_seconds=7200)
    assert [s.session_id for s in everyone.sessions] == [session_id]
    listed = await aio_client.list_user_sessions(user_id)
    assert [s.session_id for s in listed] == [session_id]

    assert (await aio_client.logout(session_token=refreshed.session_token)).revoked_count == 1
    assert await status_of(aio_client.whoami(refreshed.session_token)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert (await aio_client.logout(session_id=session_id)).revoked_count == 0


async def test_errors_are_the_sync_clients(aio_client: aio.SessionClient, user_id: str) -> None:
    with pytest.raises(grpc.RpcError) as malformed:
        await aio_client.whoami("not-a-token")
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "session_token" in (malformed.value.details() or "")

    assert await status_of(aio_client.refresh_all_for_user(user_id)) == (
        grpc.StatusCode.NOT_FOUND
    )


async def test_reuse_of_a_refresh_token_revokes_the_session(
    aio_client: aio.SessionClient, user_id: str
) -> None:
    started = await aio_client.start(user_id)
    refreshed = await aio_client.refresh(started.refresh_token)
    await aio_client.whoami(refreshed.session_token)

    assert await status_of(aio_client.refresh(started.refresh_token)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert await status_of(aio_client.whoami(refreshed.session_token)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


async def test_many_checks_in_flight_on_one_loop(
    aio_client: aio.SessionClient, user_id: str
) -> None:
    started = await aio_client.start(user_id)

    answers = await asyncio.gather(
        *(aio_client.whoami(started.session_token) for _ in range(50))
    )

    assert {a.session.session_id for a in answers} == {started.session.session_id}
