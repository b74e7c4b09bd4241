"""``LocalVerifier`` on asyncio: the sync verifier's checks and fail-closed rule (one
``VerifierState``), with the revocation feed followed by an asyncio task instead of a
thread, and ``verify`` a coroutine (an unknown signing key is fetched without blocking
the loop)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import grpc.aio

from sessiond_client._gen.session.v1 import session_pb2
from sessiond_client._verification import (
    InvalidToken,
    RevocationsStale,
    VerifierBase,
    VerifierState,
)
from sessiond_client.aio.client import SessionClient

__all__ = ["LocalVerifier"]


class LocalVerifier(VerifierBase[SessionClient]):
    """Verifies access tokens of sessiond without calling it per token; the arguments
    are those of ``sessiond_client.LocalVerifier`` (``VerifierBase``'s). Start it
    inside the loop that uses it::

        async with await LocalVerifier(client, audience="shop").start() as verifier:
            claims = await verifier.verify(access_token)
    """

    _task: asyncio.Task[None] | None = None

    async def start(self, timeout: float | None = 10.0) -> LocalVerifier:
        """Fetches the keys, starts the feed's task and waits until it is current.

        Raises ``RevocationsStale`` if the feed is not current within ``timeout``.
        """
        await self._fetch_keys()
        self._synced = asyncio.Event()
        self._task = asyncio.create_task(self._follow(), name="sessiond-revocations")
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise RevocationsStale(
                f"no revocation feed from sessiond within {timeout} s: "
                f"{self._state.last_error()}"
            ) from None
        return self

    async def close(self) -> None:
        """Stops following the feed (cancels its task and waits for it)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def __aenter__(self) -> LocalVerifier:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def verify(
        self,
        token: str,
        *,
        proof: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> dict[str, Any]:
        """The claims of ``token`` if it is valid, not revoked and, when bound to a
        device key (``cnf``), proven by ``proof`` for ``method`` ``url``; raises as
        the sync ``verify`` does."""
        self._state.check_current()
        kid = self._state.kid_of(token)
        if self._state.wants_keys_for(kid):
            try:
                await self._fetch_keys()
            except grpc.aio.AioRpcError as error:
                raise InvalidToken(
                    f"signing key {kid!r} is unknown and sessiond's JWKS cannot be "
                    f"fetched: {error.code().name}"
                ) from error
        claims = self._state.claims_of(token, kid)
        VerifierState.confirm(self._proofs, claims, token, proof, method, url)
        return claims

    async def _fetch_keys(self) -> None:
        self.remote_calls += 1
        self._state.set_keys(
            await self._client.stub.GetJwks(
                session_pb2.GetJwksRequest(), timeout=self._client.timeout
            )
        )

    # --- The revocation feed, as a task -------------------------------------------------

    async def _follow(self) -> None:
        while True:
            try:
                await self._sync_and_watch()
                error = "the revocation stream ended (server stopping?)"
            except grpc.aio.AioRpcError as rpc_error:
                error = f"{rpc_error.code().name}: {rpc_error.details()}"
            except Exception as unexpected:  # noqa: BLE001 - any failure is a lost feed
                error = repr(unexpected)
            self._state.lost(error)
            await asyncio.sleep(self._retry_interval)

    async def _sync_and_watch(self) -> None:
        revoked: dict[str, float] = {}
        cursor: int | None = None
        while True:
            self.remote_calls += 1
            page = await self._client.stub.ListRevocations(
                VerifierState.revocations_request(cursor), timeout=self._client.timeout
            )
            VerifierState.add_page(revoked, page)
            cursor = page.cursor
            if page.caught_up:
                break
        self.remote_calls += 1
        call = self._client.stub.WatchSessions(
            session_pb2.WatchSessionsRequest(after_cursor=cursor)
        )
        try:
            # The stream is open once its headers arrive.
            await call.initial_metadata()
            self._state.following(revoked, page)
            self._synced.set()
            async for event in call:
                self._state.apply(event)
        finally:
            call.cancel()
