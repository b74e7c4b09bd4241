"""Verifies sessiond's access tokens locally, with no call per verification.

``LocalVerifier`` checks a token's signature against the server's JWKS (fetched at
start, and again when a token names a key it does not know, at most once per
``jwks_cooldown`` seconds) and its ``sid`` against the set of revoked sessions, which a
background thread keeps current: ``ListRevocations`` once, then ``WatchSessions`` from
the cursor it returned. Each REVOKED or REUSE_DETECTED event revokes its session until
its access tokens have all expired (the event's time plus the feed's ``window``).

It fails closed: while the feed is lost (server unreachable, stream cut) it keeps
verifying for ``max_staleness`` seconds, then refuses every token with
``RevocationsStale`` until the feed is back, and logs that it does so.
``sessiond_client.aio.LocalVerifier`` is the same on asyncio.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import grpc

from sessiond_client._gen.session.v1 import session_pb2
from sessiond_client._verification import (
    InvalidToken,
    RevocationsStale,
    TokenRefused,
    TokenRevoked,
    VerifierBase,
    VerifierState,
)
from sessiond_client.client import SessionClient

__all__ = [
    "InvalidToken",
    "LocalVerifier",
    "RevocationsStale",
    "TokenRefused",
    "TokenRevoked",
]


class LocalVerifier(VerifierBase[SessionClient]):
    """Verifies access tokens of sessiond without calling it per token.

    ``LocalVerifier(client, audience=..., issuer="sessiond", max_staleness=30.0,
    retry_interval=1.0, jwks_cooldown=5.0, leeway=0.0)``: the arguments are
    ``VerifierBase``'s. Use it as a context manager, or call ``start`` and ``close``::

        with LocalVerifier(client, audience="shop").start() as verifier:
            claims = verifier.verify(access_token)
    """

    _thread: threading.Thread | None = None

    def start(self, timeout: float | None = 10.0) -> LocalVerifier:
        """Fetches the keys, starts following the feed and waits until it is current.

        Raises ``RevocationsStale`` if the feed is not current within ``timeout``.
        """
        self._fetch_keys()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._call_lock = threading.Lock()
        self._call: Any = None
        self._thread = threading.Thread(
            target=self._follow, name="sessiond-revocations", daemon=True
        )
        self._thread.start()
        if not self._synced.wait(timeout):
            self.close()
            raise RevocationsStale(
                f"no revocation feed from sessiond within {timeout} s: "
                f"{self._state.last_error()}"
            )
        return self

    def close(self) -> None:
        """Stops following the feed."""
        if self._thread is None:
            return
        self._stop.set()
        with self._call_lock:
            call = self._call
        if call is not None:
            call.cancel()
        self._thread.join()

    def __enter__(self) -> LocalVerifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def verify(
        self,
        token: str,
        *,
        proof: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> dict[str, Any]:
        """The claims of ``token`` if it is valid and its session not revoked.

        A token bound to a device key (its claims carry ``cnf.jkt``) needs ``proof``,
        the request's DPoP proof of that key, with the request's ``method`` and
        absolute ``url``; a token without ``cnf`` ignores them. Raises
        ``InvalidToken``, ``ProofRefused``, ``TokenRevoked`` or ``RevocationsStale``
        (all ``TokenRefused``).
        """
        self._state.check_current()
        kid = self._state.kid_of(token)
        if self._state.wants_keys_for(kid):
            try:
                self._fetch_keys()
            except grpc.RpcError as error:
                raise InvalidToken(
                    f"signing key {kid!r} is unknown and sessiond's JWKS cannot be "
                    f"fetched: {error.code().name}"
                ) from error
        claims = self._state.claims_of(token, kid)
        VerifierState.confirm(self._proofs, claims, token, proof, method, url)
        return claims

    def _fetch_keys(self) -> None:
        self.remote_calls += 1
        self._state.set_keys(
            self._client.stub.GetJwks(
                session_pb2.GetJwksRequest(), timeout=self._client.timeout
            )
        )

    # --- The revocation feed, on its own thread -----------------------------------------

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync_and_watch()
                error = "the revocation stream ended (server stopping?)"
            except grpc.RpcError as rpc_error:
                error = f"{rpc_error.code().name}: {rpc_error.details()}"
            except Exception as unexpected:  # noqa: BLE001 - any failure is a lost feed
                error = repr(unexpected)
            with self._call_lock:
                self._call = None
            if self._stop.is_set():
                return
            self._state.lost(error)
            self._stop.wait(self._retry_interval)

    def _sync_and_watch(self) -> None:
        revoked: dict[str, float] = {}
        cursor: int | None = None
        while True:
            self.remote_calls += 1
            page = self._client.stub.ListRevocations(
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
        with self._call_lock:
            self._call = call
        if self._stop.is_set():
            return
        self._state.following(revoked, page)
        self._synced.set()
        for event in call:
            self._state.apply(event)
