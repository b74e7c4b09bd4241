"""Fixtures shared by the client's tests: the server to call and a client for it.

The server is not started here: `cargo test --test python_client` starts one in-process
and passes its address in ``SESSIOND_ADDR``; by hand, run ``cargo run`` and export
``SESSIOND_ADDR=127.0.0.1:50051``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from sessiond_client import SessionClient, aio


@pytest.fixture(scope="session")
def server_addr() -> str:
    """``host:port`` of the sessiond under test, from ``SESSIOND_ADDR``."""
    addr = os.environ.get("SESSIOND_ADDR", "")
    if not addr:
        pytest.fail(
            "SESSIOND_ADDR is not set: run `cargo test --test python_client`, or start "
            "sessiond and export SESSIOND_ADDR=127.0.0.1:50051",
            pytrace=False,
        )
    return addr


@pytest.fixture
def client(server_addr: str) -> Iterator[SessionClient]:
    """A client on its own channel, closed after the test."""
    with SessionClient(server_addr) as session_client:
        yield session_client


@pytest.fixture
async def aio_client(server_addr: str) -> AsyncIterator[aio.SessionClient]:
    """An asyncio client on its own channel (in the test's event loop), closed after."""
    async with aio.SessionClient(server_addr) as session_client:
        yield session_client


@pytest.fixture
def user_id() -> str:
    """A user no other test (or earlier run against the same server) has used."""
    return f"py-{uuid.uuid4()}"
