"""The whole session lifecycle through the Python client, against a real sessiond.

Expiry checks allow a few seconds of slack so the tests also pass against a server on
the wall clock (``cargo run``); under ``cargo test`` the server's clock stands still.
"""

from __future__ import annotations

from typing import Any, Callable

import grpc
import pytest

from sessiond_client import SessionClient, session_pb2

ACTIVE = session_pb2.SessionState.SESSION_STATE_ACTIVE

#: Seconds a check may be off by when the server's clock runs.
SLACK_SECONDS = 5


def error_of(call: Callable[..., object], *args: Any, **kwargs: Any) -> grpc.Call:
    """The error ``call(*args, **kwargs)`` fails with (fails the test if none)."""
    with pytest.raises(grpc.RpcError) as raised:
        call(*args, **kwargs)
    error = raised.value
    assert isinstance(error, grpc.Call), f"not a call error: {error!r}"
    return error


def status_of(
    call: Callable[..., object], *args: Any, **kwargs: Any
) -> grpc.StatusCode:
    """The status code ``call(*args, **kwargs)`` fails with."""
    return error_of(call, *args, **kwargs).code()


def lifetime_s(session: session_pb2.Session) -> int:
    """Seconds from the session's start to its expiry."""
    return int(session.expires_at.seconds - session.created_at.seconds)


def assert_about(actual: int, expected: int) -> None:
    """``actual`` is ``expected``, or at most SLACK_SECONDS off (clock running)."""
    assert expected - SLACK_SECONDS <= actual <= expected + SLACK_SECONDS, (
        f"{actual} is not about {expected}"
    )


def test_full_lifecycle(client: SessionClient, user_id: str) -> None:
    # Start
    started = client.start(
        user_id,
        ttl_seconds=600,
        metadata={"device": "laptop"},
        attributes={"role": "admin"},
    )
    session = started.session
    assert session.user_id == user_id
    assert session.group == "default"
    assert session.state == ACTIVE
    assert session.ttl_seconds == 600
    assert dict(session.metadata) == {"device": "laptop"}
    assert dict(session.attributes) == {"role": "admin"}
    assert started.session_token.startswith("st_")
    assert started.refresh_token.startswith("rt_")
    assert_about(started.expires_in_seconds, 600)
    session_id = session.session_id

    # Whoami
    me = client.whoami(started.session_token)
    assert me.session.session_id == session_id
    assert me.session.user_id == user_id
    assert me.session.state == ACTIVE
    assert_about(me.expires_in_seconds, 600)

    # Refresh: both tokens rotate, the old session token stops working.
    refreshed = client.refresh(started.refresh_token)
    assert refreshed.session.session_id == session_id
    assert refreshed.session_token != started.session_token
    assert refreshed.refresh_token != started.refresh_token
    assert_about(refreshed.expires_in_seconds, 600)
    assert status_of(client.whoami, started.session_token) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert client.whoami(refreshed.session_token).session.session_id == session_id

    # Extend: alive for an hour from now.
    extended = client.extend(session_id, keep_alive_seconds=3600)
    assert extended.extended
    assert extended.session.session_id == session_id
    assert_about(lifetime_s(extended.session), 3600)

    # RefreshAllForUser: every active session of the user, here the one.
    all_refreshed = client.refresh_all_for_user(user_id, keep_alive_seconds=7200)
    assert all_refreshed.refreshed_count == 1
    assert [s.session_id for s in all_refreshed.sessions] == [session_id]
    assert_about(lifetime_s(all_refreshed.sessions[0]), 7200)
    assert_about(client.whoami(refreshed.session_token).expires_in_seconds, 7200)

    # Logout: the session ends, its token is refused, a retry is harmless.
    assert client.logout(session_token=refreshed.session_token).revoked_count == 1
    assert status_of(client.whoami, refreshed.session_token) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert client.logout(session_id=session_id).revoked_count == 0


def test_reused_refresh_token_is_unauthenticated_and_revokes_session(
    client: SessionClient, user_id: str
) -> None:
    started = client.start(user_id)
    refreshed = client.refresh(started.refresh_token)
    # The successor is in use, so the grace window for a lost answer is closed: the old
    # refresh token coming back now can only be a stolen copy.
    client.whoami(refreshed.session_token)

    reuse = error_of(client.refresh, started.refresh_token)

    assert reuse.code() == grpc.StatusCode.UNAUTHENTICATED
    # Token theft: the whole session is revoked, so the fresh pair is dead too.
    assert status_of(client.whoami, refreshed.session_token) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert status_of(client.refresh, refreshed.refresh_token) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_malformed_token_is_invalid_argument(client: SessionClient) -> None:
    malformed = error_of(client.whoami, "not-a-token")

    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "session_token" in (malformed.details() or "")


def test_logout_all_for_user_revokes_every_session_of_the_user(
    client: SessionClient, user_id: str
) -> None:
    mine = [client.start(user_id) for _ in range(3)]
    other = client.start(f"{user_id}-other")

    logout = client.logout(session_id=mine[0].session.session_id, all_for_user=True)

    assert logout.revoked_count == 3
    for started in mine:
        assert status_of(client.whoami, started.session_token) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
    assert client.whoami(other.session_token).session.state == ACTIVE
    again = client.logout(session_id=mine[1].session.session_id, all_for_user=True)
    assert again.revoked_count == 0


def test_a_retried_refresh_gets_the_same_pair(client: SessionClient, user_id: str) -> None:
    started = client.start(user_id)
    first = client.refresh(started.refresh_token)

    # The answer was lost; the client retries with the same refresh token.
    retry = client.refresh(started.refresh_token)

    assert (retry.session_token, retry.refresh_token) == (
        first.session_token,
        first.refresh_token,
    )
    assert client.whoami(retry.session_token).session.user_id == user_id
