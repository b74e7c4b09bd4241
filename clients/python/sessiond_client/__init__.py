"""Python client of sessiond (``session.v1.SessionService``).

``SessionClient`` wraps the generated stub with typed methods; ``LocalVerifier``
verifies access tokens locally (JWKS and the revocation feed); ``session_pb2`` is the
generated message module (``session_pb2.SessionState.SESSION_STATE_ACTIVE``, ...).
``sessiond_client.aio`` holds the same client and verifier on asyncio (``grpc.aio``).
The stubs live in ``sessiond_client._gen``, generated from the server's ``proto/`` by
``tools/generate.py`` and shipped in the package.
"""

from sessiond_client._gen.session.v1 import session_pb2
from sessiond_client._verification import (
    InvalidToken,
    RevocationsStale,
    TokenRefused,
    TokenRevoked,
)
from sessiond_client._version import SERVER_VERSIONS, __version__
from sessiond_client.client import DEFAULT_TIMEOUT_SECONDS, SessionClient
from sessiond_client.verifier import LocalVerifier

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "SERVER_VERSIONS",
    "InvalidToken",
    "LocalVerifier",
    "RevocationsStale",
    "SessionClient",
    "TokenRefused",
    "TokenRevoked",
    "__version__",
    "session_pb2",
]
