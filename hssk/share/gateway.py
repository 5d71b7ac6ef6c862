"""The insurance gateway channel: visits HSSK holds that the gateway lacks, sent as signed
QĐ 130 hồ sơ, so they reach the health book in VNeID (QĐ 2733 PL01, QĐ 31/2026).

A HIS sends its own visits to the gateway; a visit that came to HSSK as a QĐ 130 hồ sơ is
therefore never sent again (``outbox.enqueue_visits`` picks the others: commune-station
check-ups, visits written through the FHIR API). Each goes as one hồ sơ: XML1 + XML8
(``xml130_out``) in a GIAMDINHHS envelope, signed in CHUKYDONVI, base64 in ``fileHSBase64``
of the gateway's submit call (spec/xml130.md §3.2): form fields ``username``, ``loaiHoSo``,
``maTinh``, ``maCSKCB``, ``fileHSBase64``; the answer's ``maKetQua`` says what happened.

Result codes (the gateway's, as HSSK's own gateway answers them): ``200`` received;
``205`` the file is malformed; ``400`` a field is wrong; ``401`` authentication; ``403`` the
signature is refused; ``1001`` the file is too large; ``500`` the gateway failed. A hồ sơ
whose MA_LK the gateway already holds is refused as a duplicate, code ``409`` [unconfirmed:
the code the real gateway gives is not in the spec]: the visit is at the gateway, so the
event counts as delivered (a re-send after a lost answer ends the same way).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from typing import Any

import httpx
import orjson

from hssk.share import xml130_out
from hssk.share.partners import Partner
from hssk.share.xmlsign import Signer, sign_envelope

ACCEPTED, DUPLICATE = "200", "409"
REFUSED = frozenset({"205", "400", "403", "1001"})  # the content: sending again cannot help
MESSAGES = {
    "200": ("Tiếp nhận hồ sơ thành công.", "The hồ sơ was received."),
    "205": ("Tệp hồ sơ sai định dạng.", "The hồ sơ file is malformed."),
    "400": ("Hồ sơ có trường sai quy định.", "A field of the hồ sơ is wrong."),
    "401": ("Xác thực không thành công.", "Authentication failed."),
    "403": ("Chữ ký số không được chấp nhận.", "The digital signature is refused."),
    "409": ("Hồ sơ (MA_LK) đã được gửi trước đó.", "The hồ sơ (MA_LK) was already received."),
    "500": ("Lỗi hệ thống cổng tiếp nhận.", "The gateway failed."),
    "1001": ("Tệp hồ sơ vượt dung lượng cho phép.", "The hồ sơ file is too large."),
}


def payload(visit: xml130_out.Visit, signer: Signer) -> dict[str, Any]:
    """The fixed content of one event: the signed hồ sơ (base64) and what the call needs."""
    tables = xml130_out.rows(visit)
    signed = sign_envelope(xml130_out.envelope(tables), signer)
    fac = tables["XML1"]["MA_CSKCB"]
    return {
        "channel": "xml130-gateway",
        "maLk": tables["XML1"]["MA_LK"],
        "maCSKCB": fac,
        "maTinh": fac[:2],
        "loaiHoSo": "130",
        "fileHSBase64": base64.b64encode(signed).decode(),
        "sha256": hashlib.sha256(signed).hexdigest(),
        "signer": signer.subject,
    }


_tokens: dict[str, tuple[dict[str, str], float]] = {}  # partner → (headers, valid until)
_tokens_lock = threading.Lock()


def _headers(client: httpx.Client, partner: Partner) -> dict[str, str]:
    """The call's auth headers. ``auth.type`` ``gateway-token``: the gateway's token exchange
    (spec §3.2: ``POST token_url`` with ``username`` and the password's upper-case MD5, the
    password read from the environment variable ``password_env``; the answer's
    ``access_token`` / ``id_token`` go in ``accessToken`` / ``tokenId``), kept until shortly
    before it expires; any other type: ``Partner.headers``."""
    if partner.auth.get("type") != "gateway-token":
        return partner.headers()
    with _tokens_lock:
        cached = _tokens.get(partner.id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        secret = os.environ.get(str(partner.auth.get("password_env") or ""), "")
        # the gateway's own rule for the password, not a protection of it
        hashed = hashlib.md5(secret.encode(), usedforsecurity=False).hexdigest().upper()
        resp = client.post(
            str(partner.auth["token_url"]),
            data={"username": str(partner.auth.get("username") or ""), "password": hashed},
            timeout=partner.timeout_s,
        )
        try:
            answer = orjson.loads(resp.content)
            token, lifetime = str(answer["access_token"]), int(answer.get("expires_in") or 300)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise httpx.HTTPError(
                f"token refused (HTTP {resp.status_code}): {resp.text[:200]}"
            ) from None
        headers = {"accessToken": token, "tokenId": str(answer.get("id_token") or ""),
                   "passwordHash": hashed}  # fmt: skip
        _tokens[partner.id] = (headers, time.monotonic() + max(lifetime - 30, 5))
        return headers


def post(client: httpx.Client, partner: Partner, body: dict[str, Any]) -> httpx.Response:
    """The gateway's submit call: a form, the token in the headers."""
    form = {
        "username": str(partner.auth.get("username") or ""),
        "loaiHoSo": body["loaiHoSo"],
        "maTinh": body["maTinh"],
        "maCSKCB": body["maCSKCB"],
        "fileHSBase64": body["fileHSBase64"],
    }
    resp = client.post(
        partner.endpoint, data=form, headers=_headers(client, partner), timeout=partner.timeout_s
    )
    if resp.status_code == 401:  # expired or revoked: the next try asks for a new token
        with _tokens_lock:
            _tokens.pop(partner.id, None)
    return resp


def classify(resp: httpx.Response) -> tuple[bool, bool, str | None]:
    """(delivered, retry, error) of the gateway's answer."""
    try:
        answer = orjson.loads(resp.content)
        code = str(answer.get("maKetQua") or "")
        message = str(answer.get("thongDiep") or "")
    except (orjson.JSONDecodeError, AttributeError):
        code, message = "", resp.text[:300]
    if code in (ACCEPTED, DUPLICATE) and resp.status_code < 500:
        return True, False, None if code == ACCEPTED else f"{code}: {message}"[:500]
    error = f"maKetQua {code or '?'} (HTTP {resp.status_code}): {message}"[:500]
    return False, code not in REFUSED, error
