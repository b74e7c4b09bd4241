"""A small typed wrapper over the generated ``session.v1.SessionService`` stub.

Each method builds the request, makes one unary call and returns the protobuf response
unchanged. Errors are the server's: a failed call raises ``grpc.RpcError``, whose
``code()`` is the status the README's error table lists (``INVALID_ARGUMENT``,
``UNAUTHENTICATED``, ``NOT_FOUND``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import grpc

from sessiond_client import _requests
from sessiond_client._gen.session.v1 import session_pb2, session_pb2_grpc
from sessiond_client.binding import DeviceKey, ForwardedProof, ProofSigner

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "SessionClient", "session_pb2"]

#: Deadline of every call unless the client is made with another one.
DEFAULT_TIMEOUT_SECONDS = 10.0


class SessionClient:
    """Calls a sessiond server over one gRPC channel.

    Use it as a context manager so the channel is closed::

        with SessionClient("127.0.0.1:50051") as client:
            started = client.start("alice")

    ``target`` is ``host:port``. Without ``credentials`` the channel is plaintext (the
    server speaks plaintext gRPC); with them it is TLS. ``timeout`` is the deadline in
    seconds of each call (``None``: no deadline). ``base_url`` is what the DPoP proofs
    of a device key name as their ``htu`` base (default ``http(s)://target``; the
    server compares only the path).
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
        credentials: grpc.ChannelCredentials | None = None,
        base_url: str | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._signer = ProofSigner(base_url or _requests.base_url(target, credentials is not None))
        if credentials is None:
            self._channel = grpc.insecure_channel(target)
        else:
            self._channel = grpc.secure_channel(target, credentials)
        #: The generated stub (untyped), for calls this wrapper does not cover.
        self.stub: Any = session_pb2_grpc.SessionServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> SessionClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(
        self,
        user_id: str,
        group: str | None = None,
        ttl_seconds: int | None = None,
        metadata: Mapping[str, str] | None = None,
        attributes: Mapping[str, str] | None = None,
        client: session_pb2.ClientContext | None = None,
        device_key: DeviceKey | str | None = None,
    ) -> session_pb2.StartResponse:
        """Opens an ACTIVE session for ``user_id``; returns it with its two tokens.

        ``group`` names a configured policy group (unset: ``default``); ``ttl_seconds``
        overrides the group's lifespan; ``metadata`` (login context) and ``attributes``
        (enrichment data) are stored with the session; ``client`` (ip, user agent,
        device id and label) is what a "your devices" page shows. ``device_key`` binds
        the session to that key (docs/binding.md): its Refresh then needs the key. A
        key kept elsewhere (a browser's) is given as its public JWK in JSON text.
        """
        request = _requests.start(
            user_id, group, ttl_seconds, metadata, attributes, client, device_key
        )
        response: session_pb2.StartResponse = self.stub.Start(
            request, timeout=self.timeout
        )
        return response

    def whoami(
        self,
        session_token: str,
        client: session_pb2.ClientContext | None = None,
        *,
        device_key: DeviceKey | None = None,
        forwarded_proof: ForwardedProof | None = None,
    ) -> session_pb2.WhoamiResponse:
        """Validates a session token and returns its (ACTIVE) session.

        ``client`` (the caller's ip and user agent now) updates the session's last-seen
        fields, coalesced by the server (not a write per call). A bound session in a
        group with ``proof_on_use = "every_call"`` needs a proof: ``device_key`` signs
        one for this call, ``forwarded_proof`` passes on the one a service's own client
        sent it.
        """
        request = _requests.whoami(session_token, client)
        if forwarded_proof is not None:
            forwarded: session_pb2.WhoamiResponse = self.stub.Whoami(
                request, timeout=self.timeout, metadata=forwarded_proof.metadata()
            )
            return forwarded
        response: session_pb2.WhoamiResponse = self._bound_call(
            self.stub.Whoami, "Whoami", request, session_token, device_key
        )
        return response

    def refresh(
        self, refresh_token: str, *, device_key: DeviceKey | None = None
    ) -> session_pb2.RefreshResponse:
        """Trades a refresh token for a new session token and a new refresh token.

        The presented pair stops working; presenting the old refresh token again
        revokes the session (``UNAUTHENTICATED``). A bound session's Refresh needs
        ``device_key``, the key it was started with: it signs the call's proof (and
        retries once with the server's nonce when the group asks for one).
        """
        request = _requests.refresh(refresh_token)
        response: session_pb2.RefreshResponse = self._bound_call(
            self.stub.Refresh, "Refresh", request, refresh_token, device_key
        )
        return response

    def _bound_call(
        self, method: Any, rpc: str, request: Any, token: str, key: DeviceKey | None
    ) -> Any:
        """One call, with a proof by ``key`` when given, retried once with a fresh
        proof when the server answers NONCE_REQUIRED with a nonce."""
        if key is None:
            return method(request, timeout=self.timeout)
        try:
            return method(
                request, timeout=self.timeout, metadata=self._signer.metadata(key, rpc, token)
            )
        except grpc.RpcError as error:
            if self._signer.retry_nonce(error) is None:
                raise
        return method(
            request, timeout=self.timeout, metadata=self._signer.metadata(key, rpc, token)
        )

    def extend(
        self, session_id: str, keep_alive_seconds: int | None = None
    ) -> session_pb2.ExtendResponse:
        """Keep-alive: moves the session's expiry to now plus ``keep_alive_seconds``.

        Unset: the group's lifespan. ``extended`` in the answer is false when the
        session was outside its group's extend window or already at its cap.
        """
        request = _requests.extend(session_id, keep_alive_seconds)
        response: session_pb2.ExtendResponse = self.stub.Extend(
            request, timeout=self.timeout
        )
        return response

    def logout(
        self,
        session_token: str | None = None,
        session_id: str | None = None,
        all_for_user: bool = False,
        except_session_id: str | None = None,
    ) -> session_pb2.LogoutResponse:
        """Ends one session, or with ``all_for_user`` every active session of its user.

        Name the session by exactly one of ``session_token`` and ``session_id`` (the
        server answers ``INVALID_ARGUMENT`` otherwise). ``except_session_id`` (with
        ``all_for_user``) keeps that one session. ``revoked_count`` counts the sessions
        this call ended; a retry answers 0.
        """
        request = _requests.logout(
            session_token, session_id, all_for_user, except_session_id
        )
        response: session_pb2.LogoutResponse = self.stub.Logout(
            request, timeout=self.timeout
        )
        return response

    def refresh_all_for_user(
        self, user_id: str, keep_alive_seconds: int | None = None
    ) -> session_pb2.RefreshAllForUserResponse:
        """Extends every active session of ``user_id`` by Extend's rules.

        ``NOT_FOUND`` when the user has no active session.
        """
        request = _requests.refresh_all_for_user(user_id, keep_alive_seconds)
        response: session_pb2.RefreshAllForUserResponse = self.stub.RefreshAllForUser(
            request, timeout=self.timeout
        )
        return response

    def list_user_sessions(
        self, user_id: str, include_inactive: bool = False
    ) -> list[session_pb2.Session]:
        """Every session of ``user_id``, newest first, all pages (a "your devices" list).

        Each carries ``client`` (as given at Start), ``last_ip``, ``last_user_agent``
        and ``last_seen_at``; ended ones (with ``include_inactive``) their
        ``end_reason``.
        """
        sessions: list[session_pb2.Session] = []
        page_token = ""
        while True:
            request = _requests.list_user_sessions_page(
                user_id, include_inactive, page_token
            )
            page: session_pb2.ListUserSessionsResponse = self.stub.ListUserSessions(
                request, timeout=self.timeout
            )
            sessions.extend(page.sessions)
            page_token = page.next_page_token
            if not page_token:
                return sessions
