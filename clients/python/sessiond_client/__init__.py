"""Python client of sessiond (``session.v1.SessionService``).

``SessionClient`` wraps the generated stub with typed methods; ``LocalVerifier``
verifies access tokens locally (JWKS and the revocation feed); ``session_pb2`` is the
generated message module (``session_pb2.SessionState.SESSION_STATE_ACTIVE``, ...).
``DeviceKey`` binds a session to a device and signs its DPoP proofs
(``sessiond_client.binding``, docs/binding.md). ``sessiond_client.aio`` holds the
same client and verifier on asyncio (``grpc.aio``).
The stubs live in ``sessiond_client._gen``, generated from the server's ``proto/`` by
``tools/generate.py`` and shipped in the package.
"""

from sessiond_client._gen.session.v1 import session_pb2
from sessiond_client._verification import (
    InvalidToken,
    ProofRefused,
    RevocationsStale,
    TokenRefused,
    TokenRevoked,
)
from sessiond_client._version import SERVER_VERSIONS, __version__
from sessiond_client.binding import DeviceKey, ForwardedProof, binding_failure_reason
from sessiond_client.client import DEFAULT_TIMEOUT_SECONDS, SessionClient
from sessiond_client.verifier import LocalVerifier

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "SERVER_VERSIONS",
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
    "__version__",
    "session_pb2",
]
