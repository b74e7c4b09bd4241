"""``sessiond_client.aio.LocalVerifier`` against the real server: the revocation feed
followed by an asyncio task, no call per verification, a Logout refused within a
second, a new signing key fetched once, and fail closed once the feed is lost.

Needs a server whose default group sets ``access_token_ttl`` (as the one
``cargo test --test python_client`` starts does).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from tcp_proxy import TcpProxy

from sessiond_client import aio, session_pb2

#: How long after a Logout the verifier may still accept the session's tokens.
REVOCATION_DEADLINE_SECONDS = 1.0


@pytest.fixture
async def verifier(server_addr: str) -> AsyncIterator[aio.LocalVerifier]:
    """A started asyncio verifier on a connection of its own."""
    async with aio.SessionClient(server_addr) as connection:
        async with await aio.LocalVerifier(connection, audience="default").start() as local:
            yield local


async def test_tokens_verify_with_no_call_per_verification(
    aio_client: aio.SessionClient, verifier: aio.LocalVerifier, user_id: str
) -> None:
    started = await aio_client.start(user_id, attributes={"role": "admin"})
    calls = verifier.remote_calls

    for _ in range(200):
        claims = await verifier.verify(started.access_token)

    assert verifier.remote_calls == calls
    assert claims["sub"] == user_id
    assert claims["attrs"] == {"role": "admin"}


async def test_a_logout_is_refused_locally_within_a_second(
    aio_client: aio.SessionClient, verifier: aio.LocalVerifier, user_id: str
) -> None:
    started = await aio_client.start(user_id)
    await verifier.verify(started.access_token)

    await aio_client.logout(session_token=started.session_token)

    deadline = time.monotonic() + REVOCATION_DEADLINE_SECONDS
    while True:
        try:
            await verifier.verify(started.access_token)
        except aio.TokenRevoked:
            break
        assert time.monotonic() < deadline, "still accepted a second after the Logout"
        await asyncio.sleep(0.005)


async def test_a_session_revoked_before_the_verifier_started_is_refused(
    aio_client: aio.SessionClient, server_addr: str, user_id: str
) -> None:
    started = await aio_client.start(user_id)
    await aio_client.logout(session_token=started.session_token)

    async with aio.SessionClient(server_addr) as connection:
        async with await aio.LocalVerifier(connection, audience="default").start() as late:
            with pytest.raises(aio.TokenRevoked):
                await late.verify(started.access_token)


async def test_a_new_signing_key_is_fetched_once(
    aio_client: aio.SessionClient, verifier: aio.LocalVerifier, user_id: str
) -> None:
    before = await aio_client.start(user_id)
    await verifier.verify(before.access_token)
    await aio_client.stub.RotateSigningKey(session_pb2.RotateSigningKeyRequest())
    after = await aio_client.refresh(before.refresh_token)
    calls = verifier.remote_calls

    assert (await verifier.verify(after.access_token))["sub"] == user_id
    assert (await verifier.verify(after.access_token))["sub"] == user_id
    assert verifier.remote_calls == calls + 1


async def test_a_verifier_that_loses_its_feed_refuses_tokens_once_stale(
    aio_client: aio.SessionClient, server_addr: str, user_id: str
) -> None:
    started = await aio_client.start(user_id)
    proxy = TcpProxy(server_addr)
    try:
        async with aio.SessionClient(proxy.addr) as connection:
            async with await aio.LocalVerifier(
                connection, audience="default", max_staleness=0.5, retry_interval=0.1
            ).start() as verifier:
                await verifier.verify(started.access_token)

                proxy.close()

                deadline = time.monotonic() + 10.0
                while True:
                    try:
                        await verifier.verify(started.access_token)
                    except aio.RevocationsStale as stale:
                        assert "fail closed" in str(stale)
                        break
                    assert time.monotonic() < deadline, "still verifying 10 s after the loss"
                    await asyncio.sleep(0.02)
    finally:
        proxy.close()
