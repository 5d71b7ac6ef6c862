"""Notification gateway (SMS, app message) for one-time codes: pluggable.

``HSSK_NOTIFY_GATEWAY`` selects it: unset or ``dev`` → the development sink, which records each
message in the ``notification`` table (read by tests and the demo); an ``http(s)://`` URL → a
JSON POST ``{"channel", "to", "text"}`` to that gateway (e.g. the province's SMS brand-name
service), with ``HSSK_NOTIFY_TOKEN`` as bearer token when set.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import httpx
import psycopg


class Gateway(Protocol):
    def send(self, conn: psycopg.Connection[Any], channel: str, to: str, text: str) -> None: ...


class DevSink:
    """Records messages instead of sending them."""

    def send(self, conn: psycopg.Connection[Any], channel: str, to: str, text: str) -> None:
        conn.execute(
            "INSERT INTO notification (channel, destination, body) VALUES (%s, %s, %s)",
            (channel, to, text),
        )


class HttpGateway:
    """POSTs each message to a configured HTTP gateway."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0):
        self.url, self.token, self.timeout = url, token, timeout

    def send(self, conn: psycopg.Connection[Any], channel: str, to: str, text: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = httpx.post(
            self.url,
            json={"channel": channel, "to": to, "text": text},
            headers=headers,
            timeout=self.timeout,
        )
        resp.raise_for_status()


def gateway() -> Gateway:
    """The configured gateway."""
    target = os.environ.get("HSSK_NOTIFY_GATEWAY", "dev")
    if target.startswith(("http://", "https://")):
        return HttpGateway(target, os.environ.get("HSSK_NOTIFY_TOKEN"))
    return DevSink()


def tell_phone_changed(conn: psycopg.Connection[Any], old_phone: str, new_phone: str) -> bool:
    """Tell a person's old phone that their login phone changed (without the new number in
    full): the owner learns of a change they did not ask for. Unaccented: one GSM-7 SMS.
    False when the gateway did not take it (the change stands; it is kept unnotified)."""
    try:
        gateway().send(conn, "sms", old_phone, (
            f"HSSK: so dien thoai nhan ma dang nhap so suc khoe cua ban da doi sang "
            f"***{new_phone[-3:]}. Neu ban khong yeu cau, hay lien he tram y te ngay. / "
            f"The phone for your HSSK login codes was changed to ***{new_phone[-3:]}."
        ))  # fmt: skip
    except httpx.HTTPError:  # a gateway outage must not stop a register load
        return False
    return True


def sent_to(conn: psycopg.Connection[Any], destination: str, limit: int = 10) -> list[str]:
    """Messages the development sink recorded for ``destination``, newest first."""
    rows = conn.execute(
        "SELECT body FROM notification WHERE destination = %s ORDER BY id DESC LIMIT %s",
        (destination, limit),
    ).fetchall()
    return [r[0] for r in rows]
