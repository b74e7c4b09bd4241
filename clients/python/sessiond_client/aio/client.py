"""``SessionClient`` on ``grpc.aio``: each method builds the same request as the sync
client's and awaits one call. A failed call raises ``grpc.aio.AioRpcError``, a
``grpc.RpcError`` whose ``code()`` and ``details()`` are the server's status, as the
sync client's errors."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import grpc
import grpc.aio

from sessiond_client import _requests
from sessiond_client._gen.session.v1 import session_pb2, session_pb2_grpc
from sessiond_client.binding import DeviceKey, ForwardedProof, ProofSigner
from sessiond_client.client import DEFAULT_TIMEOUT_SECONDS

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "SessionClient"]


class SessionClient:
    """Calls a sessiond server over one ``grpc.aio`` channel; the methods are those of
    ``sessiond_client.SessionClient``, as coroutines.

    Make it inside the event loop that uses it, and close it (``async with``, or
    ``await client.close()``)::

        async with SessionClient("127.0.0.1:50051") as client:
            started = await client.start("alice")
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
            self._channel = grpc.aio.insecure_channel(target)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials)
        #: The generated stub (untyped) on the aio channel: its calls are awaitable.
        self.stub: Any = session_pb2_grpc.SessionServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> SessionClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(
        self,
        user_id: str,
        group: str | None = None,
        ttl_seconds: int | None = None,
        metadata: Mapping[str, str] | None = None,
        attributes: Mapping[str, str] | None = None,
        client: session_pb2.ClientContext | None = None,
        device_key: DeviceKey | str | None = None,
    ) -> session_pb2.StartResponse:
        """Opens an ACTIVE session for ``user_id``, bound to ``device_key`` when given
        (see the sync ``start``)."""
        request = _requests.start(
            user_id, group, ttl_seconds, metadata, attributes, client, device_key
        )
        response: session_pb2.StartResponse = await self.stub.Start(
            request, timeout=self.timeout
        )
        return response

    async def whoami(
        self,
        session_token: str,
        client: session_pb2.ClientContext | None = None,
        *,
        device_key: DeviceKey | None = None,
        forwarded_proof: ForwardedProof | None = None,
    ) -> session_pb2.WhoamiResponse:
        """Validates a session token and returns its (ACTIVE) session; ``device_key``
        or ``forwarded_proof`` prove a bound session (see the sync ``whoami``)."""
        request = _requests.whoami(session_token, client)
        if forwarded_proof is not None:
            forwarded: session_pb2.WhoamiResponse = await self.stub.Whoami(
                request, timeout=self.timeout, metadata=forwarded_proof.metadata()
            )
            return forwarded
        response: session_pb2.WhoamiResponse = await self._bound_call(
            self.stub.Whoami, "Whoami", request, session_token, device_key
        )
        return response

    async def refresh(
        self, refresh_token: str, *, device_key: DeviceKey | None = None
    ) -> session_pb2.RefreshResponse:
        """Trades a refresh token for a new pair, signing the proof a bound session
        needs with ``device_key`` (see the sync ``refresh``)."""
        response: session_pb2.RefreshResponse = await self._bound_call(
            self.stub.Refresh, "Refresh", _requests.refresh(refresh_token), refresh_token, device_key
        )
        return response

    async def _bound_call(
        self, method: Any, rpc: str, request: Any, token: str, key: DeviceKey | None
    ) -> Any:
        """One call, with a proof by ``key`` when given, retried once with a fresh
        proof when the server answers NONCE_REQUIRED with a nonce."""
        if key is None:
            return await method(request, timeout=self.timeout)
        try:
            return await method(
                request, timeout=self.timeout, metadata=self._signer.metadata(key, rpc, token)
            )
        except grpc.aio.AioRpcError as error:
            if self._signer.retry_nonce(error) is None:
                raise
        return await method(
            request, timeout=self.timeout, metadata=self._signer.metadata(key, rpc, token)
        )

    async def extend(
        self, session_id: str, keep_alive_seconds: int | None = None
    ) -> session_pb2.ExtendResponse:
        """Keep-alive: moves the session's expiry (see the sync ``extend``)."""
        response: session_pb2.ExtendResponse = await self.stub.Extend(
            _requests.extend(session_id, keep_alive_seconds), timeout=self.timeout
        )
        return response

    async def logout(
        self,
        session_token: str | None = None,
        session_id: str | None = None,
        all_for_user: bool = False,
        except_session_id: str | None = None,
    ) -> session_pb2.LogoutResponse:
        """Ends one session, or every one of its user (see the sync ``logout``)."""
        request = _requests.logout(session_token, session_id, all_for_user, except_session_id)
        response: session_pb2.LogoutResponse = await self.stub.Logout(
            request, timeout=self.timeout
        )
        return response

    async def refresh_all_for_user(
        self, user_id: str, keep_alive_seconds: int | None = None
    ) -> session_pb2.RefreshAllForUserResponse:
        """Extends every active session of ``user_id`` by Extend's rules."""
        response: session_pb2.RefreshAllForUserResponse = await self.stub.RefreshAllForUser(
            _requests.refresh_all_for_user(user_id, keep_alive_seconds), timeout=self.timeout
        )
        return response

    async def list_user_sessions(
        self, user_id: str, include_inactive: bool = False
    ) -> list[session_pb2.Session]:
        """Every session of ``user_id``, newest first, all pages."""
        sessions: list[session_pb2.Session] = []
        page_token = ""
        while True:
            request = _requests.list_user_sessions_page(user_id, include_inactive, page_token)
            page: session_pb2.ListUserSessionsResponse = await self.stub.ListUserSessions(
                request, timeout=self.timeout
            )
            sessions.extend(page.sessions)
            page_token = page.next_page_token
            if not page_token:
                return sessions
