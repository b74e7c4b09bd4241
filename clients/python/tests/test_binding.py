"""Device-bound sessions (docs/binding.md) against the real server: Start binds a
session to a ``DeviceKey``, Refresh (and Whoami in an ``every_call`` group) signs its
DPoP proof, a nonce asked for is fetched and used, a call without the key is refused
with its reason, a proof made with PyJWT directly is accepted, and LocalVerifier
demands a proof of the key a ``cnf`` access token names.

Needs the groups ``cargo test --test testsuite python_client`` configures: ``default``
with access tokens, ``every`` (``proof_on_use = "every_call"``) and ``nonce``
(``require_nonce = true``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from sessiond_client import (
    DeviceKey,
    ForwardedProof,
    LocalVerifier,
    ProofRefused,
    SessionClient,
    binding_failure_reason,
    session_pb2,
)
from sessiond_client.binding import b64url, jwk_thumbprint, token_hash

REFRESH_PATH = "/session.v1.SessionService/Refresh"


@pytest.fixture
def verifier(server_addr: str) -> Iterator[LocalVerifier]:
    """A started verifier on a connection of its own."""
    with SessionClient(server_addr) as connection:
        with LocalVerifier(connection, audience="default").start() as local:
            yield local


def refused_reason(call: object) -> str | None:
    """The binding reason of the UNAUTHENTICATED error ``call()`` raises."""
    with pytest.raises(grpc.RpcError) as refused:
        call()  # type: ignore[operator]
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    return binding_failure_reason(refused.value)


# --- Keys, without a server --------------------------------------------------------------


def test_the_thumbprint_is_rfc_7638s() -> None:
    # RFC 8037 A.3: the thumbprint of the Ed25519 key of A.2.
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize("curve", ["Ed25519", "P-256"])
def test_a_key_survives_its_pem(curve: str) -> None:
    key = DeviceKey.generate(curve)
    loaded = DeviceKey.from_pem(key.to_pem())
    assert loaded.thumbprint == key.thumbprint
    assert loaded.public_jwk() == key.public_jwk()
    assert "d" not in key.public_jwk()


# --- The server --------------------------------------------------------------------------


@pytest.mark.parametrize("curve", ["Ed25519", "P-256"])
def test_start_binds_and_refresh_signs_with_the_key(
    client: SessionClient, user_id: str, curve: str
) -> None:
    key = DeviceKey.generate(curve)
    started = client.start(user_id, device_key=key)
    assert started.session.device_key_thumbprint == key.thumbprint

    rotated = client.refresh(started.refresh_token, device_key=key)
    again = client.refresh(rotated.refresh_token, device_key=key)

    assert again.session_token != rotated.session_token


def test_a_refresh_without_the_key_is_refused_as_proof_missing(
    client: SessionClient, user_id: str
) -> None:
    started = client.start(user_id, device_key=DeviceKey.generate())

    reason = refused_reason(lambda: client.refresh(started.refresh_token))

    assert reason == "PROOF_MISSING"


def test_a_refresh_with_another_key_is_refused_as_key_mismatch(
    client: SessionClient, user_id: str
) -> None:
    started = client.start(user_id, device_key=DeviceKey.generate())
    thief = DeviceKey.generate()

    reason = refused_reason(lambda: client.refresh(started.refresh_token, device_key=thief))

    assert reason == "KEY_MISMATCH"


def test_a_nonce_the_group_asks_for_is_fetched_and_used(
    server_addr: str, user_id: str
) -> None:
    key = DeviceKey.generate()
    with SessionClient(server_addr) as client:
        started = client.start(user_id, group="nonce", device_key=key)
        rotated = client.refresh(started.refresh_token, device_key=key)
        client.refresh(rotated.refresh_token, device_key=key)
    # A proof without the server's nonce is refused with the reason the client retries on.
    with SessionClient(server_addr) as fresh:
        started = fresh.start(user_id, group="nonce", device_key=key)
        proof = key.proof("POST", f"http://{server_addr}{REFRESH_PATH}", started.refresh_token)
        reason = refused_reason(
            lambda: fresh.stub.Refresh(
                session_pb2.RefreshRequest(refresh_token=started.refresh_token),
                metadata=(("dpop", proof),),
            )
        )
    assert reason == "NONCE_REQUIRED"


def test_whoami_in_an_every_call_group_needs_the_key(client: SessionClient, user_id: str) -> None:
    key = DeviceKey.generate()
    started = client.start(user_id, group="every", device_key=key)

    me = client.whoami(started.session_token, device_key=key)
    reason = refused_reason(lambda: client.whoami(started.session_token))

    assert me.session.session_id == started.session.session_id
    assert reason == "PROOF_MISSING"


def test_a_service_forwards_its_clients_proof_to_whoami(
    client: SessionClient, user_id: str
) -> None:
    key = DeviceKey.generate()
    started = client.start(user_id, group="every", device_key=key)
    # The device called the service's GET /orders?page=2; the service forwards that.
    proof = key.proof("GET", "https://app.example/orders?page=2", started.session_token)

    me = client.whoami(
        started.session_token,
        forwarded_proof=ForwardedProof(proof, "GET", "https://APP.example:443/orders"),
    )

    assert me.session.session_id == started.session.session_id


def test_a_proof_made_with_pyjwt_directly_is_accepted(
    client: SessionClient, server_addr: str, user_id: str
) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    jwk = jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk = {name: jwk[name] for name in ("kty", "crv", "x")}
    started = client.start(user_id, device_key=json.dumps(jwk))
    claims = {
        "jti": secrets.token_urlsafe(16),
        "iat": int(time.time()),
        "htm": "POST",
        "htu": f"http://{server_addr}{REFRESH_PATH}",
        "ath": b64url(hashlib.sha256(started.refresh_token.encode()).digest()),
    }
    proof = jwt.encode(
        claims, private, algorithm="EdDSA", headers={"typ": "dpop+jwt", "jwk": jwk}
    )

    rotated = client.stub.Refresh(
        session_pb2.RefreshRequest(refresh_token=started.refresh_token),
        metadata=(("dpop", proof),),
    )

    assert rotated.session_token
    assert started.session.device_key_thumbprint == jwk_thumbprint(jwk)


# --- LocalVerifier and cnf ---------------------------------------------------------------


def test_the_local_verifier_demands_a_proof_for_a_bound_token(
    client: SessionClient, verifier: LocalVerifier, user_id: str
) -> None:
    key = DeviceKey.generate()
    token = client.start(user_id, device_key=key).access_token
    url = "https://api.example/orders"
    assert jwt.decode(token, options={"verify_signature": False})["cnf"] == {
        "jkt": key.thumbprint
    }

    good = key.proof("GET", url, token)
    ten_minutes_ago = int(time.time()) - 600
    claims = verifier.verify(token, proof=good, method="GET", url=url + "?page=1")

    assert claims["sub"] == user_id
    for proof, reason in [
        (None, "PROOF_MISSING"),
        (good, "REPLAYED"),
        (DeviceKey.generate().proof("GET", url, token), "KEY_MISMATCH"),
        (key.proof("POST", url, token), "REQUEST_MISMATCH"),
        (key.proof("GET", url, "another token"), "TOKEN_HASH_MISMATCH"),
        (key.proof("GET", url, token, issued_at=ten_minutes_ago), "ISSUED_AT_OUT_OF_WINDOW"),
    ]:
        with pytest.raises(ProofRefused) as refused:
            verifier.verify(token, proof=proof, method="GET", url=url)
        assert refused.value.reason == reason


def test_the_local_verifier_ignores_a_proof_for_an_unbound_token(
    client: SessionClient, verifier: LocalVerifier, user_id: str
) -> None:
    token = client.start(user_id).access_token
    foreign = DeviceKey.generate().proof("GET", "https://api.example/", token)

    assert verifier.verify(token)["sub"] == user_id
    assert verifier.verify(token, proof=foreign, method="GET", url="https://x/")["sub"] == user_id


def test_hostile_proof_headers_are_refused_locally(
    client: SessionClient, verifier: LocalVerifier, user_id: str
) -> None:
    key = DeviceKey.generate()
    token = client.start(user_id, device_key=key).access_token
    claims = {
        "jti": "j",
        "iat": int(time.time()),
        "htm": "GET",
        "htu": "https://a/",
        "ath": token_hash(token),
    }
    jwk = key.public_jwk()
    # HS256 "keyed" with anything: refused for its alg before any signature check.
    hs256 = jwt.encode(
        claims, "a-secret-of-at-least-32-bytes-long", algorithm="HS256",
        headers={"typ": "dpop+jwt", "jwk": jwk},
    )
    # A JWT signed by the right key, but not typed as a DPoP proof.
    untyped = jwt.encode(
        claims, ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32)), algorithm="EdDSA",
        headers={"typ": "JWT", "jwk": jwk},
    )
    cases = [
        (hs256, "ALGORITHM_NOT_ALLOWED"),
        (untyped, "PROOF_TYPE_INVALID"),
        ("a.b", "PROOF_MALFORMED"),
    ]
    for proof, reason in cases:
        with pytest.raises(ProofRefused) as refused:
            verifier.verify(token, proof=proof, method="GET", url="https://a/")
        assert refused.value.reason == reason
