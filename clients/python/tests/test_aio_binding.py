"""Device-bound sessions on asyncio: the aio client binds, signs Refresh and Whoami
proofs (with the nonce round trip), and the aio LocalVerifier demands a proof for a
``cnf`` token, as the sync ones do (``test_binding.py``)."""

from __future__ import annotations

import grpc
import pytest

from sessiond_client import aio
from sessiond_client.aio import DeviceKey, LocalVerifier, ProofRefused, binding_failure_reason


async def test_the_aio_client_binds_and_signs(aio_client: aio.SessionClient, user_id: str) -> None:
    key = DeviceKey.generate("P-256")
    started = await aio_client.start(user_id, group="nonce", device_key=key)

    rotated = await aio_client.refresh(started.refresh_token, device_key=key)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await aio_client.refresh(rotated.refresh_token)

    assert started.session.device_key_thumbprint == key.thumbprint
    assert binding_failure_reason(refused.value) == "PROOF_MISSING"


async def test_aio_whoami_signs_in_an_every_call_group(
    aio_client: aio.SessionClient, user_id: str
) -> None:
    key = DeviceKey.generate()
    started = await aio_client.start(user_id, group="every", device_key=key)

    me = await aio_client.whoami(started.session_token, device_key=key)

    assert me.session.device_key_thumbprint == key.thumbprint


async def test_the_aio_verifier_demands_a_proof_for_a_bound_token(
    aio_client: aio.SessionClient, user_id: str
) -> None:
    key = DeviceKey.generate()
    token = (await aio_client.start(user_id, device_key=key)).access_token
    url = "https://api.example/orders"
    async with await LocalVerifier(aio_client, audience="default").start() as verifier:
        proof = key.proof("GET", url, token)
        claims = await verifier.verify(token, proof=proof, method="GET", url=url)
        with pytest.raises(ProofRefused) as missing:
            await verifier.verify(token)
        with pytest.raises(ProofRefused) as replayed:
            await verifier.verify(token, proof=proof, method="GET", url=url)

    assert claims["sub"] == user_id
    assert (missing.value.reason, replayed.value.reason) == ("PROOF_MISSING", "REPLAYED")
