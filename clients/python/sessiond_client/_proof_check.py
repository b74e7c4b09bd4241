"""The DPoP proof (RFC 9449) a LocalVerifier demands with an access token whose claims
carry ``cnf.jkt`` (docs/binding.md): one decision, a value, with no I/O of its own but
the memory of the proof ids already used."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import jwt

from sessiond_client.binding import jwk_thumbprint, token_hash

__all__ = ["ProofChecker", "same_target"]

#: The key a proof's ``alg`` must come with: (kty, crv) per algorithm.
_KEY_OF_ALG = {"EdDSA": ("OKP", "Ed25519"), "ES256": ("EC", "P-256")}
#: The largest proof accepted (as the server: 4 KiB) and the longest ``jti``.
MAX_PROOF_BYTES, MAX_JTI_BYTES = 4096, 128


def _normalized(uri: str) -> str:
    uri = uri.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    at = rest.find("/")
    authority, path = (rest, "/") if at < 0 else (rest[:at], rest[at:])
    scheme, authority = scheme.lower(), authority.lower()
    default_port = {"https": ":443", "http": ":80"}.get(scheme, "")
    if default_port and authority.endswith(default_port):
        authority = authority[: -len(default_port)]
    return f"{scheme}://{authority}{path}"


def same_target(htu: str, url: str) -> bool:
    """Whether a proof's ``htu`` names the request at ``url`` (RFC 9449 §4.3): query and
    fragment ignored, scheme and host case-insensitive, default ports dropped; a ``url``
    that is only a path matches any absolute ``htu`` with that path."""
    if url.startswith("/"):
        _, sep, rest = _normalized(htu).partition("://")
        at = rest.find("/")
        return bool(sep) and at >= 0 and rest[at:] == _normalized(url)
    return _normalized(htu) == _normalized(url)


class ProofChecker:
    """Checks proofs for ``cnf`` tokens and remembers their ids for twice ``max_skew``
    (a proof is usable once; past that its ``iat`` refuses it). Thread-safe."""

    def __init__(self, max_skew: float = 60.0) -> None:
        self.max_skew = max_skew
        self._lock = threading.Lock()
        # (jkt, jti) -> until when (epoch seconds) it is remembered.
        self._seen: dict[tuple[str, str], float] = {}
        self._pruned_at = 0.0

    def check(
        self,
        proof: str | None,
        *,
        jkt: str,
        access_token: str,
        method: str | None,
        url: str | None,
        now: float | None = None,
    ) -> tuple[str, str] | None:
        """None if ``proof`` proves possession of the key ``jkt`` for the request
        ``method`` ``url`` made with ``access_token``; else (reason, detail), the reason
        named as sessiond names it (``PROOF_MISSING``, ``KEY_MISMATCH``, ...)."""
        now = time.time() if now is None else now
        if not proof:
            return "PROOF_MISSING", "the token is bound to a key (cnf) and came without a proof"
        if method is None or url is None:
            return "REQUEST_MISMATCH", "a bound token's proof needs the request's method and url"
        if len(proof) > MAX_PROOF_BYTES:
            return "PROOF_MALFORMED", "the proof is larger than 4 KiB"
        try:
            header = jwt.get_unverified_header(proof)
        except jwt.PyJWTError as error:
            return "PROOF_MALFORMED", str(error)
        if header.get("typ") != "dpop+jwt":
            return "PROOF_TYPE_INVALID", f"typ {header.get('typ')!r} is not dpop+jwt"
        alg, jwk = header.get("alg"), header.get("jwk")
        if alg not in _KEY_OF_ALG:
            return "ALGORITHM_NOT_ALLOWED", f"alg {alg!r} is not EdDSA or ES256"
        if not isinstance(jwk, dict) or "d" in jwk:
            return "KEY_INVALID", "jwk is not a public key"
        if (jwk.get("kty"), jwk.get("crv")) != _KEY_OF_ALG[alg]:
            return "ALGORITHM_NOT_ALLOWED", f"alg {alg} does not fit the jwk"
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
        except (jwt.PyJWTError, ValueError, KeyError) as error:
            return "KEY_INVALID", str(error)
        try:
            payload = jwt.PyJWS().decode_complete(proof, key=key, algorithms=[alg])["payload"]
        except jwt.InvalidSignatureError:
            return "SIGNATURE_INVALID", "the proof's signature does not verify with its jwk"
        except jwt.PyJWTError as error:
            return "PROOF_MALFORMED", str(error)
        try:
            claims: Any = json.loads(payload)
        except ValueError as error:
            return "PROOF_MALFORMED", str(error)
        if not isinstance(claims, dict):
            return "PROOF_MALFORMED", "the claims are not a JSON object"
        if jwk_thumbprint(jwk) != jkt:
            return "KEY_MISMATCH", "the proof's key is not the one the token is bound to"
        return self._check_claims(claims, jkt, access_token, method, url, now)

    def _check_claims(
        self,
        claims: dict[str, Any],
        jkt: str,
        access_token: str,
        method: str,
        url: str,
        now: float,
    ) -> tuple[str, str] | None:
        jti, iat = claims.get("jti"), claims.get("iat")
        htm, htu, ath = claims.get("htm"), claims.get("htu"), claims.get("ath")
        if not isinstance(jti, str) or not jti or len(jti.encode()) > MAX_JTI_BYTES:
            return "PROOF_MALFORMED", "jti is missing or too long"
        if not isinstance(iat, (int, float)) or isinstance(iat, bool):
            return "PROOF_MALFORMED", "iat is missing"
        if not all(isinstance(claim, str) for claim in (htm, htu, ath)):
            return "PROOF_MALFORMED", "htm, htu or ath is missing"
        if abs(iat - now) > self.max_skew:
            return "ISSUED_AT_OUT_OF_WINDOW", f"iat is more than {self.max_skew} s away"
        if ath != token_hash(access_token):
            return "TOKEN_HASH_MISMATCH", "ath is the hash of another token"
        if htm != method or not same_target(htu, url):
            return "REQUEST_MISMATCH", f"the proof is for {htm} {htu}, not {method} {url}"
        with self._lock:
            if self._seen.get((jkt, jti), 0.0) > now:
                return "REPLAYED", "this proof was already used"
            if now - self._pruned_at > self.max_skew:  # forget expired ids now and then
                self._seen = {seen: t for seen, t in self._seen.items() if t > now}
                self._pruned_at = now
            self._seen[(jkt, jti)] = now + 2 * self.max_skew
        return None
