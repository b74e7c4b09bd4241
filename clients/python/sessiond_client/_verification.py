"""What LocalVerifier knows and decides, with no I/O of its own: the signing keys, the
revoked sessions, whether the revocation feed is current, and the checks of a token.
The sync verifier (a thread) and the asyncio one (a task) only feed it from sessiond."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Generic, TypeVar

import jwt

from sessiond_client._gen.session.v1 import session_pb2
from sessiond_client._proof_check import ProofChecker

__all__ = [
    "InvalidToken",
    "ProofRefused",
    "RevocationsStale",
    "TokenRefused",
    "TokenRevoked",
    "VerifierBase",
    "VerifierState",
]

log = logging.getLogger("sessiond_client.verifier")

_REVOKING = (
    session_pb2.SessionEventKind.SESSION_EVENT_KIND_REVOKED,
    session_pb2.SessionEventKind.SESSION_EVENT_KIND_REUSE_DETECTED,
)

#: Revocations asked for per ListRevocations page.
REVOCATIONS_PAGE_SIZE = 500

ClientT = TypeVar("ClientT")


class TokenRefused(Exception):
    """The verifier does not accept this access token."""


class InvalidToken(TokenRefused):
    """Not a valid access token: bad signature, unknown key, expired, wrong audience..."""


class ProofRefused(InvalidToken):
    """A token bound to a device key (``cnf.jkt``) came without a valid DPoP proof of
    that key for this request. ``reason`` is named as sessiond names it
    (``PROOF_MISSING``, ``KEY_MISMATCH``, ``REPLAYED``, ...; docs/binding.md)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class TokenRevoked(TokenRefused):
    """A valid signature, but its session was revoked (Logout, eviction, reuse)."""


class RevocationsStale(TokenRefused):
    """The revocation feed has been lost for longer than ``max_staleness``: the
    verifier cannot tell whether the token was revoked, so it refuses it."""


class VerifierState:
    """The verifier's state behind one lock (the sync verifier reads it from the
    caller's threads while its feed thread writes it)."""

    def __init__(
        self,
        *,
        audience: str,
        issuer: str,
        max_staleness: float,
        jwks_cooldown: float,
        leeway: float,
    ) -> None:
        self._audience = audience
        self._issuer = issuer
        self._max_staleness = max_staleness
        self._jwks_cooldown = jwks_cooldown
        self._leeway = leeway
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        # Monotonic time of the last fetch for an unknown key (None: none yet).
        self._refetched_at: float | None = None
        # Session id -> until when (epoch seconds) its tokens are refused.
        self._revoked: dict[str, float] = {}
        self._window = 0.0
        self._following = False
        # Monotonic time the feed was last known complete (None: never yet).
        self._current_at: float | None = None
        self._last_error = ""
        self._synced_once = False

    # --- Keys ---------------------------------------------------------------------------

    def set_keys(self, response: session_pb2.GetJwksResponse) -> None:
        """Takes the keys of a GetJwks answer."""
        keys = {
            jwk["kid"]: jwt.PyJWK(jwk).key for jwk in json.loads(response.jwks_json)["keys"]
        }
        with self._lock:
            self._keys = keys

    def wants_keys_for(self, kid: Any) -> bool:
        """Whether ``kid`` is unknown and the keys may be fetched again for it (a new
        signing key after a rotation; at most once per ``jwks_cooldown``). Marks the
        fetch as done when it says yes."""
        now = time.monotonic()
        with self._lock:
            if kid in self._keys:
                return False
            if self._refetched_at is not None and now - self._refetched_at < self._jwks_cooldown:
                return False
            self._refetched_at = now
            return True

    @staticmethod
    def kid_of(token: str) -> Any:
        """The ``kid`` of the token's header (unverified)."""
        try:
            return jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from error

    # --- Verification -------------------------------------------------------------------

    def check_current(self) -> None:
        """Raises ``RevocationsStale`` unless the feed is current or lost for less than
        ``max_staleness``."""
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

    def claims_of(self, token: str, kid: Any) -> dict[str, Any]:
        """The claims of ``token`` signed by the key ``kid`` if it is valid and its
        session not revoked; raises ``InvalidToken`` or ``TokenRevoked``."""
        with self._lock:
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken(f"no signing key {kid!r} in sessiond's JWKS")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
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

    @staticmethod
    def confirm(
        proofs: ProofChecker,
        claims: dict[str, Any],
        token: str,
        proof: str | None,
        method: str | None,
        url: str | None,
    ) -> None:
        """Raises ``ProofRefused`` unless a token bound to a key (``cnf.jkt``) came
        with a good proof of it for this request; a token without ``cnf`` ignores any."""
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if jkt is None:
            return
        failure = proofs.check(
            proof, jkt=str(jkt), access_token=token, method=method, url=url
        )
        if failure is not None:
            raise ProofRefused(*failure)

    # --- The revocation feed ------------------------------------------------------------

    @staticmethod
    def revocations_request(cursor: int | None) -> session_pb2.ListRevocationsRequest:
        """The ListRevocations page after ``cursor`` (None: the first)."""
        request = session_pb2.ListRevocationsRequest(page_size=REVOCATIONS_PAGE_SIZE)
        if cursor is not None:
            request.after_cursor = cursor
        return request

    @staticmethod
    def add_page(revoked: dict[str, float], page: session_pb2.ListRevocationsResponse) -> None:
        """Adds a ListRevocations page to ``revoked`` (session id -> refused until)."""
        for revocation in page.revocations:
            revoked[revocation.session_id] = revocation.not_after.ToMilliseconds() / 1000

    def following(
        self, revoked: dict[str, float], last_page: session_pb2.ListRevocationsResponse
    ) -> None:
        """The feed is current again: ``revoked`` is every revoked session, and the
        watch from the last page's cursor is open."""
        with self._lock:
            self._revoked = revoked
            self._window = last_page.window.ToTimedelta().total_seconds()
            self._following, self._current_at = True, time.monotonic()
            back = self._synced_once
            self._synced_once = True
        if back:
            log.warning("revocation feed is back: verifying tokens again")

    def apply(self, event: session_pb2.SessionEvent) -> None:
        """Takes one event of the watch: a revoking one refuses its session's tokens
        until they have all expired (the event's time plus the feed's window)."""
        now = time.time()
        with self._lock:
            if event.kind in _REVOKING:
                self._revoked[event.session_id] = event.at.ToMilliseconds() / 1000 + self._window
                # Entries drop out once their tokens have all expired.
                self._revoked = {sid: t for sid, t in self._revoked.items() if t > now}
            self._current_at = time.monotonic()

    def lost(self, error: str) -> None:
        """The feed was cut (``error`` says why): tokens are still accepted for
        ``max_staleness`` from now, then refused."""
        with self._lock:
            was_following = self._following
            if was_following:
                self._current_at = time.monotonic()
            self._following, self._last_error = False, error
        if was_following:
            log.warning(
                "revocation feed lost (%s): tokens are refused after %s s unless it "
                "comes back (fail closed)",
                error,
                self._max_staleness,
            )

    def last_error(self) -> str:
        with self._lock:
            return self._last_error


class VerifierBase(Generic[ClientT]):
    """What the sync and the asyncio LocalVerifier are both made of: the connection, the
    settings and the state. Each follows the feed its own way from ``start`` on.

    ``client`` is the connection to sessiond (not closed by the verifier); its caller
    needs the ListRevocations and WatchSessions permissions when callers are configured.
    ``audience`` and ``issuer`` are the ``aud`` and ``iss`` claims to require.
    ``max_staleness`` is how long (seconds) tokens are still accepted after the
    revocation feed is lost; ``retry_interval`` how long to wait between attempts to
    get it back; ``jwks_cooldown`` the least time between two fetches of the keys for
    an unknown key id; ``leeway`` the seconds of clock skew allowed on ``exp``;
    ``max_proof_skew`` the seconds a DPoP proof's ``iat`` may be off (its id is
    remembered twice as long, to refuse a replay).
    """

    def __init__(
        self,
        client: ClientT,
        *,
        audience: str,
        issuer: str = "sessiond",
        max_staleness: float = 30.0,
        retry_interval: float = 1.0,
        jwks_cooldown: float = 5.0,
        leeway: float = 0.0,
        max_proof_skew: float = 60.0,
    ) -> None:
        self._client = client
        self._proofs = ProofChecker(max_proof_skew)
        self._retry_interval = retry_interval
        self._state = VerifierState(
            audience=audience,
            issuer=issuer,
            max_staleness=max_staleness,
            jwks_cooldown=jwks_cooldown,
            leeway=leeway,
        )
        #: Calls made to sessiond so far (JWKS fetches, feed pages, watch streams):
        #: verifying a token never adds one.
        self.remote_calls = 0
