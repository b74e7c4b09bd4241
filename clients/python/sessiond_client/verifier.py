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
"""

from __future__ import annotations

import json
import logging
import threading
import time
from types import TracebackType
from typing import Any

import grpc
import jwt

from sessiond_client.client import SessionClient, session_pb2

__all__ = [
    "InvalidToken",
    "LocalVerifier",
    "RevocationsStale",
    "TokenRefused",
    "TokenRevoked",
]

log = logging.getLogger("sessiond_client.verifier")

_REVOKING = (
    session_pb2.SessionEventKind.SESSION_EVENT_KIND_REVOKED,
    session_pb2.SessionEventKind.SESSION_EVENT_KIND_REUSE_DETECTED,
)


class TokenRefused(Exception):
    """The verifier does not accept this access token."""


class InvalidToken(TokenRefused):
    """Not a valid access token: bad signature, unknown key, expired, wrong audience..."""


class TokenRevoked(TokenRefused):
    """A valid signature, but its session was revoked (Logout, eviction, reuse)."""


class RevocationsStale(TokenRefused):
    """The revocation feed has been lost for longer than ``max_staleness``: the
    verifier cannot tell whether the token was revoked, so it refuses it."""


class LocalVerifier:
    """Verifies access tokens of sessiond without calling it per token.

    ``client`` is the connection to sessiond (not closed by the verifier); its caller
    needs the ListRevocations and WatchSessions permissions when callers are configured.
    ``audience`` and ``issuer`` are the ``aud`` and ``iss`` claims to require.
    ``max_staleness`` is how long (seconds) tokens are still accepted after the
    revocation feed is lost; ``retry_interval`` how long to wait between attempts to
    get it back. Use it as a context manager, or call ``start`` and ``close``::

        with LocalVerifier(client, audience="shop").start() as verifier:
            claims = verifier.verify(access_token)
    """

    def __init__(
        self,
        client: SessionClient,
        *,
        audience: str,
        issuer: str = "sessiond",
        max_staleness: float = 30.0,
        retry_interval: float = 1.0,
        jwks_cooldown: float = 5.0,
        leeway: float = 0.0,
    ) -> None:
        self._client = client
        self._audience = audience
        self._issuer = issuer
        self._max_staleness = max_staleness
        self._retry_interval = retry_interval
        self._jwks_cooldown = jwks_cooldown
        self._leeway = leeway
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._keys_fetched_at: float | None = None
        # Session id -> until when (epoch seconds) its tokens are refused.
        self._revoked: dict[str, float] = {}
        self._window = 0.0
        self._following = False
        # Monotonic time the feed was last known complete (None: never yet).
        self._current_at: float | None = None
        self._last_error = ""
        self._call: Any = None
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._follow, name="sessiond-revocations", daemon=True
        )
        #: Calls made to sessiond so far (JWKS fetches, feed pages, watch streams):
        #: verifying a token never adds one.
        self.remote_calls = 0

    def start(self, timeout: float | None = 10.0) -> LocalVerifier:
        """Fetches the keys, starts following the feed and waits until it is current.

        Raises ``RevocationsStale`` if the feed is not current within ``timeout``.
        """
        self._fetch_keys()
        self._thread.start()
        if not self._synced.wait(timeout):
            self.close()
            raise RevocationsStale(
                f"no revocation feed from sessiond within {timeout} s: {self._last_error}"
            )
        return self

    def close(self) -> None:
        """Stops following the feed."""
        self._stop.set()
        with self._lock:
            call = self._call
        if call is not None:
            call.cancel()
        if self._thread.is_alive():
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

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of ``token`` if it is valid and its session not revoked.

        Raises ``InvalidToken``, ``TokenRevoked`` or ``RevocationsStale`` (all
        ``TokenRefused``).
        """
        self._check_current()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            claims: dict[str, Any] = jwt.decode(
                token,
                key=self._key(kid),
                algorithms=["EdDSA"],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sid", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from error
        with self._lock:
            revoked_until = self._revoked.get(claims["sid"])
        if revoked_until is not None and revoked_until > time.time():
            raise TokenRevoked(f"session {claims['sid']} was revoked")
        return claims

    def _check_current(self) -> None:
        with self._lock:
            if self._following:
                return
            current_at, error = self._current_at, self._last_error
        if current_at is None:
            raise RevocationsStale(f"no revocation feed from sessiond yet: {error}")
        lost_for = time.monotonic() - current_at
        if lost_for > self._max_staleness:
            raise RevocationsStale(
                f"revocation feed lost {lost_for:.1f} s ago (max_staleness "
                f"{self._max_staleness} s): refusing every token until it is back "
                f"(fail closed); last error: {error}"
            )

    # --- Keys --------------------------------------------------------------------------

    def _key(self, kid: Any) -> Any:
        with self._lock:
            key = self._keys.get(kid)
            fetched_at = self._keys_fetched_at
        cooled = fetched_at is None or time.monotonic() - fetched_at >= self._jwks_cooldown
        if key is None and cooled:
            # A new signing key (after a rotation): fetch the keys again, once.
            try:
                self._fetch_keys()
            except grpc.RpcError as error:
                raise jwt.InvalidKeyError(
                    f"signing key {kid!r} is unknown and sessiond's JWKS cannot be "
                    f"fetched: {error.code().name}"
                ) from error
            with self._lock:
                key = self._keys.get(kid)
                self._keys_fetched_at = time.monotonic()
        if key is None:
            raise jwt.InvalidKeyError(f"no signing key {kid!r} in sessiond's JWKS")
        return key

    def _fetch_keys(self) -> None:
        self.remote_calls += 1
        response = self._client.stub.GetJwks(
            session_pb2.GetJwksRequest(), timeout=self._client.timeout
        )
        keys = {
            jwk["kid"]: jwt.PyJWK(jwk).key
            for jwk in json.loads(response.jwks_json)["keys"]
        }
        with self._lock:
            self._keys = keys

    # --- The revocation feed -----------------------------------------------------------

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync_and_watch()
                error = "the revocation stream ended (server stopping?)"
            except grpc.RpcError as rpc_error:
                error = f"{rpc_error.code().name}: {rpc_error.details()}"
            except Exception as unexpected:  # noqa: BLE001 - any failure is a lost feed
                error = repr(unexpected)
            if self._stop.is_set():
                return
            self._lost(error)
            self._stop.wait(self._retry_interval)

    def _sync_and_watch(self) -> None:
        revoked: dict[str, float] = {}
        cursor: int | None = None
        while True:
            request = session_pb2.ListRevocationsRequest(page_size=500)
            if cursor is not None:
                request.after_cursor = cursor
            self.remote_calls += 1
            page = self._client.stub.ListRevocations(
                request, timeout=self._client.timeout
            )
            for revocation in page.revocations:
                revoked[revocation.session_id] = (
                    revocation.not_after.ToMilliseconds() / 1000
                )
            cursor = page.cursor
            if page.caught_up:
                break
        window = page.window.ToTimedelta().total_seconds()
        self.remote_calls += 1
        call = self._client.stub.WatchSessions(
            session_pb2.WatchSessionsRequest(after_cursor=cursor)
        )
        with self._lock:
            self._revoked, self._window, self._call = revoked, window, call
            self._following, self._current_at = True, time.monotonic()
        if self._synced.is_set():
            log.warning("revocation feed is back: verifying tokens again")
        self._synced.set()
        for event in call:
            now = time.time()
            with self._lock:
                if event.kind in _REVOKING:
                    until = event.at.ToMilliseconds() / 1000 + self._window
                    self._revoked[event.session_id] = until
                    # Entries drop out once their tokens have all expired.
                    self._revoked = {
                        sid: until for sid, until in self._revoked.items() if until > now
                    }
                self._current_at = time.monotonic()

    def _lost(self, error: str) -> None:
        with self._lock:
            was_following = self._following
            if was_following:
                self._current_at = time.monotonic()
            self._following, self._call, self._last_error = False, None, error
        if was_following:
            log.warning(
                "revocation feed lost (%s): tokens are refused after %s s unless it "
                "comes back (fail closed)",
                error,
                self._max_staleness,
            )
