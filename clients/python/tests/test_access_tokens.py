"""Signed access tokens, verified with an independent JWT library (PyJWT) against the
keys GetJwks publishes, across a key rotation.

Needs a server whose default group sets ``access_token_ttl`` (as the one
``cargo test --test python_client`` starts does).
"""

from __future__ import annotations

import json

import jwt
import pytest

from sessiond_client import SessionClient, session_pb2


def verify(client: SessionClient, token: str) -> dict[str, object]:
    """The claims of ``token``, verified with the key its header names."""
    jwks = json.loads(client.stub.GetJwks(session_pb2.GetJwksRequest()).jwks_json)
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(jwk for jwk in jwks["keys"] if jwk["kid"] == kid)
    claims: dict[str, object] = jwt.decode(
        token,
        key=jwt.PyJWK(key).key,
        algorithms=["EdDSA"],
        audience="default",
        issuer="sessiond",
    )
    return claims


def test_access_token_verifies_with_the_published_keys(
    client: SessionClient, user_id: str
) -> None:
    started = client.start(user_id, attributes={"role": "admin"})
    if not started.access_token:
        pytest.fail("the server issues no access tokens: set access_token_ttl")

    claims = verify(client, started.access_token)

    assert claims["sub"] == user_id
    assert claims["sid"] == started.session.session_id
    assert claims["group"] == "default"
    assert claims["attrs"] == {"role": "admin"}
    assert 0 < started.access_token_expires_in_seconds <= 300


def test_tokens_verify_across_a_key_rotation(client: SessionClient, user_id: str) -> None:
    before = client.start(user_id)
    client.stub.RotateSigningKey(session_pb2.RotateSigningKeyRequest())
    after = client.refresh(before.refresh_token)

    old_kid = jwt.get_unverified_header(before.access_token)["kid"]
    new_kid = jwt.get_unverified_header(after.access_token)["kid"]

    assert old_kid != new_kid
    assert verify(client, before.access_token)["sub"] == user_id
    assert verify(client, after.access_token)["sub"] == user_id


def test_a_forged_access_token_does_not_verify(client: SessionClient, user_id: str) -> None:
    started = client.start(user_id)
    header, payload, signature = started.access_token.split(".")
    forged = f"{header}.{payload[:-2]}AA.{signature}"

    with pytest.raises(jwt.InvalidTokenError):
        verify(client, forged)
