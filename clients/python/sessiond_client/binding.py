"""Device-bound sessions (docs/binding.md): the device key a session is bound to, the
DPoP proofs (RFC 9449) it signs, and the binding reason of a refused call.

``DeviceKey.generate()`` makes an Ed25519 key (``DeviceKey.generate("P-256")`` a P-256
one), ``DeviceKey.from_pem`` loads one (PKCS#8 PEM, as ``to_pem`` writes it and
``sessionctl --device-key`` and openssl do). ``SessionClient.start(..., device_key=key)``
binds the session to it; ``refresh(token, device_key=key)`` and ``whoami(token,
device_key=key)`` sign the proof each call needs, and retry once with the server's nonce
when it asks for one. No JOSE code on the caller's side: proofs are PyJWT's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = [
    "DeviceKey",
    "ForwardedProof",
    "binding_failure",
    "binding_failure_reason",
    "jwk_thumbprint",
]

#: The gRPC metadata that carries a proof, and the request it names when forwarded.
PROOF_KEY, METHOD_KEY, URL_KEY = "dpop", "dpop-method", "dpop-url"
#: The trailer that carries a fresh server nonce on a NONCE_REQUIRED refusal.
NONCE_KEY = "dpop-nonce"
#: The google.rpc.ErrorInfo domain of sessiond's reasons.
ERROR_DOMAIN = "sessiond"


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token_hash(token: str) -> str:
    """A proof's ``ath``: base64url(SHA-256(the token as presented))."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint (base64url) of a public Ed25519 or P-256 JWK:
    what ``Session.device_key_thumbprint`` and an access token's ``cnf.jkt`` hold."""
    members = ("crv", "kty", "x", "y") if jwk.get("kty") == "EC" else ("crv", "kty", "x")
    canonical = {name: jwk[name] for name in members}
    text = json.dumps(canonical, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(text.encode("utf-8")).digest())


class DeviceKey:
    """A device's private key (Ed25519 or P-256) that signs DPoP proofs.

    Keep it on the device (``to_pem`` to store it, ``from_pem`` to load it back); only
    its public JWK (``public_jwk_json``) goes to the server, at Start.
    """

    def __init__(self, private_key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> None:
        if isinstance(private_key, ed25519.Ed25519PrivateKey):
            raw = private_key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            self._jwk: dict[str, str] = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
            self.alg = "EdDSA"
        elif isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(
            private_key.curve, ec.SECP256R1
        ):
            numbers = private_key.public_key().public_numbers()
            self._jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url(numbers.x.to_bytes(32, "big")),
                "y": b64url(numbers.y.to_bytes(32, "big")),
            }
            self.alg = "ES256"
        else:
            raise ValueError("a device key is Ed25519 or P-256")
        self._private_key = private_key
        #: The RFC 7638 thumbprint of the public key (the session's binding).
        self.thumbprint = jwk_thumbprint(self._jwk)

    @classmethod
    def generate(cls, curve: str = "Ed25519") -> DeviceKey:
        """A new key from the OS random generator: ``"Ed25519"`` or ``"P-256"``."""
        if curve == "Ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        if curve == "P-256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        raise ValueError(f"unsupported curve {curve!r}: Ed25519 or P-256")

    @classmethod
    def from_pem(cls, data: bytes | str, password: bytes | None = None) -> DeviceKey:
        """Loads a private key in PEM (PKCS#8, or SEC1 for P-256)."""
        if isinstance(data, str):
            data = data.encode("ascii")
        key = serialization.load_pem_private_key(data, password=password)
        if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError("a device key is Ed25519 or P-256")
        return cls(key)

    def to_pem(self, password: bytes | None = None) -> bytes:
        """The private key in PKCS#8 PEM (encrypted with ``password`` when given)."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK (a copy)."""
        return dict(self._jwk)

    def public_jwk_json(self) -> str:
        """The public JWK in JSON text: ``StartRequest.device_key``."""
        return json.dumps(self._jwk, separators=(",", ":"))

    def proof(
        self,
        method: str,
        url: str,
        token: str | None = None,
        *,
        nonce: str | None = None,
        issued_at: int | None = None,
    ) -> str:
        """A DPoP proof (compact JWS) for the request ``method`` ``url`` made with
        ``token`` (its ``ath``), carrying the server's ``nonce`` when given.

        For sessiond's own calls the clients make these; a device that calls a web
        backend (which forwards it to Whoami with ``ForwardedProof``) makes one for the
        backend's request, e.g. ``key.proof("GET", "https://api.example/orders",
        session_token)``.
        """
        claims: dict[str, Any] = {
            "jti": b64url(secrets.token_bytes(16)),
            "iat": int(time.time()) if issued_at is None else issued_at,
            "htm": method,
            "htu": url,
        }
        if token is not None:
            claims["ath"] = token_hash(token)
        if nonce:
            claims["nonce"] = nonce
        headers = {"typ": "dpop+jwt", "jwk": self.public_jwk()}
        return jwt.encode(claims, self._private_key, algorithm=self.alg, headers=headers)

    def __repr__(self) -> str:
        return f"DeviceKey({self.alg}, thumbprint={self.thumbprint!r})"


@dataclass(frozen=True)
class ForwardedProof:
    """A proof a service received from its own client (its ``DPoP`` header) and
    forwards to Whoami, with the method and absolute URL of the request it came with."""

    proof: str
    method: str
    url: str

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The gRPC metadata that forwards it: ``dpop``, ``dpop-method``, ``dpop-url``."""
        return ((PROOF_KEY, self.proof), (METHOD_KEY, self.method), (URL_KEY, self.url))


# --- The binding reason of a refused call -----------------------------------------------


def _rpc_messages() -> tuple[Any, Any]:
    """google.rpc.Status and google.rpc.ErrorInfo, wire-compatible, in a pool of our own
    (so a program that also loads googleapis-common-protos sees no duplicate)."""
    string, bytes_, int32, message = 9, 12, 5, 11
    optional, repeated = 1, 3
    file = descriptor_pb2.FileDescriptorProto(
        name="sessiond_client/rpc_status.proto", package="sessiond_client.rpc", syntax="proto3"
    )

    def add(name: str, fields: Sequence[tuple[str, int, int, int, str]]) -> None:
        described = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = described.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name

    add("Any", [("type_url", 1, string, optional, ""), ("value", 2, bytes_, optional, "")])
    add(
        "Status",
        [
            ("code", 1, int32, optional, ""),
            ("message", 2, string, optional, ""),
            ("details", 3, message, repeated, ".sessiond_client.rpc.Any"),
        ],
    )
    add("Entry", [("key", 1, string, optional, ""), ("value", 2, string, optional, "")])
    add(
        "ErrorInfo",
        [
            ("reason", 1, string, optional, ""),
            ("domain", 2, string, optional, ""),
            ("metadata", 3, message, repeated, ".sessiond_client.rpc.Entry"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    status = message_factory.GetMessageClass(pool.FindMessageTypeByName("sessiond_client.rpc.Status"))
    info = message_factory.GetMessageClass(pool.FindMessageTypeByName("sessiond_client.rpc.ErrorInfo"))
    return status, info


_Status, _ErrorInfo = _rpc_messages()


def _metadata_of(error: grpc.RpcError, which: str) -> list[tuple[str, Any]]:
    read = getattr(error, which, None)
    try:
        return list(read() or ()) if read is not None else []
    except Exception:  # noqa: BLE001 - an error without metadata has none to read
        return []


def binding_failure(error: grpc.RpcError) -> tuple[str, dict[str, str]] | None:
    """The reason (``PROOF_MISSING``, ``NONCE_REQUIRED``, ...) and metadata of a call
    refused for its binding (sessiond's google.rpc.ErrorInfo), or None."""
    for key, value in _metadata_of(error, "trailing_metadata"):
        if key != "grpc-status-details-bin":
            continue
        status = _Status.FromString(bytes(value))
        for detail in status.details:
            if detail.type_url.endswith("/google.rpc.ErrorInfo"):
                info = _ErrorInfo.FromString(detail.value)
                if info.domain == ERROR_DOMAIN:
                    return info.reason, {entry.key: entry.value for entry in info.metadata}
    return None


def binding_failure_reason(error: grpc.RpcError) -> str | None:
    """The ErrorInfo reason of a refused call (``PROOF_MISSING``, ...), or None."""
    failure = binding_failure(error)
    return failure[0] if failure else None


def nonce_to_retry_with(error: grpc.RpcError) -> str | None:
    """The server nonce to retry with when ``error`` is a NONCE_REQUIRED refusal."""
    code = getattr(error, "code", None)  # a channel's RpcError is also a grpc.Call
    if code is None or code() != grpc.StatusCode.UNAUTHENTICATED:
        return None
    failure = binding_failure(error)
    if failure is None or failure[0] != "NONCE_REQUIRED":
        return None
    for which in ("trailing_metadata", "initial_metadata"):
        for key, value in _metadata_of(error, which):
            if key == NONCE_KEY and value:
                return str(value)
    return failure[1].get("nonce") or None


class ProofSigner:
    """What both clients do with a device key on a call: the proof's metadata for the
    gRPC method, with the last nonce the server handed out (saving a round trip)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.nonce: str | None = None

    def metadata(self, key: DeviceKey, rpc: str, token: str) -> tuple[tuple[str, str], ...]:
        url = f"{self.base_url}/session.v1.SessionService/{rpc}"
        return ((PROOF_KEY, key.proof("POST", url, token, nonce=self.nonce)),)

    def retry_nonce(self, error: grpc.RpcError) -> str | None:
        """The nonce to retry once with (and remember), or None: raise the error."""
        nonce = nonce_to_retry_with(error)
        if nonce is not None:
            self.nonce = nonce
        return nonce
