"""Python client of sessiond (``session.v1.SessionService``).

``SessionClient`` wraps the generated stub with typed methods; ``LocalVerifier``
verifies access tokens locally (JWKS and the revocation feed); ``session_pb2`` is the
generated message module (``session_pb2.SessionState.SESSION_STATE_ACTIVE``, ...). The
stubs live in ``sessiond_client._gen``, made from ``proto/`` by
``clients/python/setup_env.sh`` and never committed.
"""

# Through client.py, which explains a missing _gen (run setup_env.sh).
from sessiond_client.client import DEFAULT_TIMEOUT_SECONDS, SessionClient, session_pb2
from sessiond_client.verifier import (
    InvalidToken,
    LocalVerifier,
    RevocationsStale,
    TokenRefused,
    TokenRevoked,
)

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "InvalidToken",
    "LocalVerifier",
    "RevocationsStale",
    "SessionClient",
    "TokenRefused",
    "TokenRevoked",
    "session_pb2",
]
