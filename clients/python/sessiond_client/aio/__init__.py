"""The asyncio client of sessiond, on ``grpc.aio``: the same calls, arguments, answers
and errors as ``sessiond_client``, awaited, so a FastAPI, aiohttp or ``grpc.aio``
service never blocks its event loop on a session check::

    from sessiond_client.aio import LocalVerifier, SessionClient

    async with SessionClient("127.0.0.1:50051") as client:
        started = await client.start("alice")
        async with await LocalVerifier(client, audience="default").start() as verifier:
            claims = await verifier.verify(started.access_token)
"""

from sessiond_client._gen.session.v1 import session_pb2
from sessiond_client._verification import (
    InvalidToken,
    ProofRefused,
    RevocationsStale,
    TokenRefused,
    TokenRevoked,
)
from sessiond_client.binding import DeviceKey, ForwardedProof, binding_failure_reason
from sessiond_client.aio.client import DEFAULT_TIMEOUT_SECONDS, SessionClient
from sessiond_client.aio.verifier import LocalVerifier

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "DeviceKey",
    "ForwardedProof",
    "InvalidToken",
    "LocalVerifier",
    "ProofRefused",
    "RevocationsStale",
    "SessionClient",
    "TokenRefused",
    "TokenRevoked",
    "binding_failure_reason",
    "session_pb2",
]
