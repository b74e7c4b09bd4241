"""A "your devices" page: each login's device and where it was last seen, logging out
one device, then every device but the current one."""

from __future__ import annotations

from sessiond_client import SessionClient, session_pb2


def login(client: SessionClient, user_id: str, label: str, ip: str) -> session_pb2.StartResponse:
    context = session_pb2.ClientContext(
        ip=ip, user_agent=f"{label} browser", device_id=label, device_label=label
    )
    return client.start(user_id, client=context)


def test_your_devices_page(client: SessionClient, user_id: str) -> None:
    laptop = login(client, user_id, "laptop", "192.0.2.10")
    phone = login(client, user_id, "phone", "198.51.100.7")
    tablet = login(client, user_id, "tablet", "203.0.113.5")
    client.whoami(
        phone.session_token,
        client=session_pb2.ClientContext(ip="198.51.100.8", user_agent="phone browser 2"),
    )

    # Newest first; the test server's clock stands still, so compare as a set.
    devices = client.list_user_sessions(user_id)
    assert sorted(s.client.device_label for s in devices) == ["laptop", "phone", "tablet"]
    assert {s.client.device_label: s.client.ip for s in devices}["laptop"] == "192.0.2.10"

    # "Log out this device" (the tablet), from the laptop's page.
    assert client.logout(session_id=tablet.session.session_id).revoked_count == 1
    # "Log out all other devices": every one but the laptop.
    ended = client.logout(
        session_token=laptop.session_token,
        all_for_user=True,
        except_session_id=laptop.session.session_id,
    )
    assert ended.revoked_count == 1
    active = client.list_user_sessions(user_id)
    assert [s.session_id for s in active] == [laptop.session.session_id]
    everything = client.list_user_sessions(user_id, include_inactive=True)
    reasons = {s.client.device_label: s.end_reason for s in everything}
    assert reasons["tablet"] == session_pb2.END_REASON_ADMIN_REVOKE
    assert reasons["phone"] == session_pb2.END_REASON_LOGOUT_OTHERS
