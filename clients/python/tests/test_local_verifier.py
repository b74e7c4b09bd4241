"""LocalVerifier against the real server: tokens verified with no call each, a Logout
refused locally within a second, keys fetched again after a rotation, and a verifier
that loses its revocation feed refusing tokens once it is stale (fail closed).

Needs a server whose default group sets ``access_token_ttl`` (as the one
``cargo test --test python_client`` starts does).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from tcp_proxy import TcpProxy

from sessiond_client import (
    LocalVerifier,
    RevocationsStale,
    SessionClient,
    TokenRevoked,
    session_pb2,
)

#: How long after a Logout the verifier may still accept the session's tokens.
REVOCATION_DEADLINE_SECONDS = 1.0


@pytest.fixture
def verifier(server_addr: str) -> Iterator[LocalVerifier]:
    """A started verifier on a connection of its own."""
    with SessionClient(server_addr) as connection:
        with LocalVerifier(connection, audience="default").start() as local:
            yield local


def refused_within(verifier: LocalVerifier, token: str, seconds: float) -> bool:
    """Whether ``verify`` raises ``TokenRevoked`` for ``token`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            verifier.verify(token)
        except TokenRevoked:
            return True
        time.sleep(0.005)
    return False


def test_tokens_verify_with_no_call_per_verification(
    client: SessionClient, verifier: LocalVerifier, user_id: str
) -> None:
    started = client.start(user_id, attributes={"role": "admin"})
    calls = verifier.remote_calls

    for _ in range(200):
        claims = verifier.verify(started.access_token)

    assert verifier.remote_calls == calls
    assert claims["sub"] == user_id
    assert claims["sid"] == started.session.session_id
    assert claims["attrs"] == {"role": "admin"}


def test_a_logout_is_refused_locally_within_a_second(
    client: SessionClient, verifier: LocalVerifier, user_id: str
) -> None:
    started = client.start(user_id)
    verifier.verify(started.access_token)

    client.logout(session_token=started.session_token)

    assert refused_within(verifier, started.access_token, REVOCATION_DEADLINE_SECONDS)


def test_a_session_revoked_before_the_verifier_started_is_refused(
    client: SessionClient, server_addr: str, user_id: str
) -> None:
    started = client.start(user_id)
    client.logout(session_token=started.session_token)

    with SessionClient(server_addr) as connection:
        with LocalVerifier(connection, audience="default").start() as late:
            with pytest.raises(TokenRevoked):
                late.verify(started.access_token)


def test_a_new_signing_key_is_fetched_once(
    client: SessionClient, verifier: LocalVerifier, user_id: str
) -> None:
    before = client.start(user_id)
    verifier.verify(before.access_token)
    client.stub.RotateSigningKey(session_pb2.RotateSigningKeyRequest())
    after = client.refresh(before.refresh_token)
    calls = verifier.remote_calls

    assert verifier.verify(after.access_token)["sub"] == user_id
    assert verifier.verify(after.access_token)["sub"] == user_id
    assert verifier.remote_calls == calls + 1


def test_a_verifier_that_loses_its_feed_refuses_tokens_once_stale(
    client: SessionClient, server_addr: str, user_id: str
) -> None:
    started = client.start(user_id)
    proxy = TcpProxy(server_addr)
    try:
        with SessionClient(proxy.addr) as connection:
            with LocalVerifier(
                connection, audience="default", max_staleness=0.5, retry_interval=0.1
            ).start() as verifier:
                verifier.verify(started.access_token)

                proxy.close()

                deadline = time.monotonic() + 10.0
                while True:
                    try:
                        verifier.verify(started.access_token)
                    except RevocationsStale as stale:
                        assert "fail closed" in str(stale)
                        break
                    assert time.monotonic() < deadline, "still verifying 10 s after the loss"
                    time.sleep(0.02)
    finally:
        proxy.close()
