"""A call that carries its caller's W3C ``traceparent``, as an OpenTelemetry-instrumented
service sends it. Run by ``tests/tracing.rs`` with ``SESSIOND_TRACEPARENT`` set, against a
server that exports traces to a receiver in that test, which then finds sessiond's span as
a child of this caller's; skipped otherwise (no receiver to look).
"""

from __future__ import annotations

import os

import pytest

from sessiond_client import SessionClient, session_pb2

TRACEPARENT = os.environ.get("SESSIOND_TRACEPARENT", "")


@pytest.mark.skipif(not TRACEPARENT, reason="run by tests/tracing.rs (needs its receiver)")
def test_a_call_carries_the_callers_traceparent(client: SessionClient, user_id: str) -> None:
    started = client.start(user_id)
    # What an OpenTelemetry gRPC interceptor adds to every call's metadata.
    answer = client.stub.Whoami(
        session_pb2.WhoamiRequest(session_token=started.session_token),
        metadata=(("traceparent", TRACEPARENT),),
        timeout=client.timeout,
    )
    assert answer.session.user_id == user_id
