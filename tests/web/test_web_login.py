"""Login and sessions over HTTP: the code page shows a masked phone and says precisely why a
code was refused (wrong, expired, used up, back-off, SMS limit); the code can be resent after a
countdown; staff sessions slide while in use, an expired one keeps the form that was being
sent and never shows a raw token error; a disabled account is out at its next request."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from hssk.access import accounts as acc
from hssk.access import auth
from hssk.access.notify import sent_to
from hssk.access.tokens import issue
from hssk.http.gate import COOKIE, SESSION_TTL
from hssk.kernel.config import load_settings
from hssk.web.demo import PASSWORD


@pytest.fixture(autouse=True)
def fresh_throttles(server) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Every test starts with no failures counted and no codes sent (all from 127.0.0.1)."""
    with server.db.connection() as conn:
        conn.execute("DELETE FROM login_failure")
        conn.execute("DELETE FROM otp_code WHERE purpose = 'login'")
    yield


def _post(server, data: dict[str, str], lang: str = "") -> httpx.Response:  # type: ignore[no-untyped-def]
    q = f"?lang={lang}" if lang else ""
    return httpx.post(f"{server.url}/book/login{q}", data={"next": "/book", **data})


def _visible(html: str) -> str:
    """The page's text without hidden inputs (which carry the identifier back, not shown)."""
    return re.sub(r'<input type="hidden"[^>]*>', "", html)


def _code(server) -> str:  # type: ignore[no-untyped-def]
    with server.db.connection() as conn:
        message = sent_to(conn, server.family.mother_phone, 1)[0]
    return re.findall(r"\b\d{6}\b", message)[0]


def _sms_count(server) -> int:  # type: ignore[no-untyped-def]
    with server.db.connection() as conn:
        return len(sent_to(conn, server.family.mother_phone, 1000))


def test_masked_phone_never_the_cccd(server) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    masked = auth.masked_phone(f.mother_phone)
    assert re.fullmatch(r"0\d••\xa0•••\xa0\d{3}", masked) and masked.endswith(f.mother_phone[-3:])
    sent = _post(server, {"identifier": f.mother_cccd})
    assert sent.status_code == 200 and masked in sent.text
    wrong = _post(server, {"identifier": f.mother_cccd, "code": "000000"})
    assert wrong.status_code == 422
    page = _visible(wrong.text)
    assert masked in page and f.mother_cccd not in page and f.mother_phone not in page
    assert f"Bạn còn {auth.OTP_ATTEMPTS - 1} lần thử" in page
    en = _post(server, {"identifier": f.mother_cccd, "code": "000001"}, lang="en")
    assert f"{auth.OTP_ATTEMPTS - 2} more tries" in en.text


def test_unknown_number_masked_too(server) -> None:  # type: ignore[no-untyped-def]
    r = _post(server, {"identifier": "001199999990"})
    assert r.status_code == 200 and "00••••••••90" in r.text
    assert "001199999990" not in _visible(r.text)


def test_expired_code(server) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    _post(server, {"identifier": f.mother_cccd})
    code = _code(server)
    with server.db.connection() as conn:
        conn.execute("UPDATE otp_code SET expires_at = now() - interval '1 second' "
                     "WHERE purpose = 'login'")  # fmt: skip
    r = _post(server, {"identifier": f.mother_cccd, "code": code})
    assert r.status_code == 422 and "Mã xác thực đã hết hạn" in r.text
    en = _post(server, {"identifier": f.mother_cccd, "code": code}, lang="en")
    assert "The code has expired" in en.text


def test_code_used_up(server) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    _post(server, {"identifier": f.mother_cccd})
    code = _code(server)
    with server.db.connection() as conn:
        conn.execute("UPDATE otp_code SET attempts = %s WHERE purpose = 'login'",
                     (auth.OTP_ATTEMPTS,))  # fmt: skip
    r = _post(server, {"identifier": f.mother_cccd, "code": code})  # even the right code
    assert r.status_code == 422 and "quá số lần cho phép" in r.text
    assert "Gửi lại mã" in r.text


def test_too_many_failures_say_when(server) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    _post(server, {"identifier": f.mother_cccd})
    for _ in range(auth.PAIR.free):
        _post(server, {"identifier": f.mother_cccd, "code": "000000"})
    r = _post(server, {"identifier": f.mother_cccd, "code": _code(server)})
    assert r.status_code == 422
    assert "Có quá nhiều lần đăng nhập sai" in r.text and re.search(r"từ \d\d:\d\d", r.text)
    en = _post(server, {"identifier": f.mother_cccd, "code": "000000"}, lang="en")
    assert "Too many failed attempts" in en.text and "try again in" in en.text


def test_sms_limit_says_when(server) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    for _ in range(auth.OTP_PER_WINDOW):
        assert _post(server, {"identifier": f.mother_cccd}).status_code == 200
        with server.db.connection() as conn:  # past the resend wait
            conn.execute("UPDATE otp_code SET created_at = created_at - interval '61 seconds'")
    r = _post(server, {"identifier": f.mother_cccd, "resend": "1"})
    assert r.status_code == 422 and "Bạn đã yêu cầu quá nhiều mã" in r.text
    assert re.search(r"sau 1\d phút", r.text), _visible(r.text)
    en = _post(server, {"identifier": f.mother_cccd, "resend": "1"}, lang="en")
    assert "Too many codes were requested" in en.text


def test_resend_after_the_countdown(server) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    before = _sms_count(server)
    first = _post(server, {"identifier": f.mother_cccd})
    assert 'id="resend" disabled' in first.text and "Có thể gửi lại mã sau 60 giây" in first.text
    assert '<script src="/static/resend.js"' in first.text
    script = httpx.get(f"{server.url}/static/resend.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "script-src 'self'" in script.headers["content-security-policy"]
    old = _code(server)
    # a resend within the wait (a double click) sends nothing more
    again = _post(server, {"identifier": f.mother_cccd, "resend": "1"})
    assert again.status_code == 200 and _sms_count(server) == before + 1
    with server.db.connection() as conn:
        conn.execute("UPDATE otp_code SET created_at = created_at - interval '61 seconds'")
    resent = _post(server, {"identifier": f.mother_cccd, "resend": "1"})
    assert resent.status_code == 200 and _sms_count(server) == before + 2
    new = _code(server)
    if new != old:  # the older code no longer counts: only the latest does
        assert _post(server, {"identifier": f.mother_cccd, "code": old}).status_code == 422
    ok = _post(server, {"identifier": f.mother_cccd, "code": new})
    assert ok.status_code == 303 and COOKIE in ok.headers["set-cookie"]


# --- staff sessions ------------------------------------------------------------------------
def _staff_token(server, ttl: int) -> str:  # type: ignore[no-untyped-def]
    with server.db.connection() as conn:
        account = acc.find_account(conn, server.family.station_user)
    assert account is not None
    return issue(load_settings(), account.actor(), ttl=ttl)


def _get(server, path: str, token: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.get(f"{server.url}{path}", headers={"Cookie": f"{COOKIE}={token}"})


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_session_slides_while_in_use(server) -> None:  # type: ignore[no-untyped-def]
    fresh = _get(server, "/station/checkup", _staff_token(server, SESSION_TTL))
    assert fresh.status_code == 200 and "set-cookie" not in fresh.headers  # plenty left
    old = _staff_token(server, SESSION_TTL // 2 - 10)  # less than half its life left
    renewed = _get(server, "/station/checkup", old)
    assert renewed.status_code == 200
    cookie = renewed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    token = re.search(rf"{COOKIE}=([^;]+)", cookie).group(1)  # type: ignore[union-attr]
    assert _claims(token)["exp"] >= time.time() + SESSION_TTL - 30
    assert _claims(token)["sst"] == _claims(old)["sst"]  # the login time is kept
    assert _get(server, "/station/checkup", token).status_code == 200


def test_expired_session_to_login_with_a_message(server) -> None:  # type: ignore[no-untyped-def]
    expired = _staff_token(server, -5)
    r = _get(server, "/station/checkup", expired)
    assert r.status_code == 303 and r.headers["location"].endswith("&expired=1")
    login = httpx.get(f"{server.url}{r.headers['location']}")
    assert "Phiên làm việc đã hết hạn" in login.text


def test_supervision_never_shows_a_token_error(server) -> None:  # type: ignore[no-untyped-def]
    expired = _staff_token(server, -5)
    for path in ("/supervision", "/supervision/quality", "/supervision/export.csv"):
        r = _get(server, path, expired)
        assert r.status_code == 303, (path, r.text[:200])
        assert r.headers["location"].startswith("/staff/login?next=")
        assert "Signature" not in r.text
    assert httpx.get(f"{server.url}/supervision").headers["location"].startswith("/staff/login")


def test_form_survives_the_login(server) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    typed = {"cccd": f.mother_cccd, "kind": "sang-loc", "height": "156", "weight": "59",
             "systolic": "131", "diastolic": "83", "glucose": "5,4"}  # fmt: skip
    r = httpx.post(f"{server.url}/station/checkup", data=typed,
                   headers={"Cookie": f"{COOKIE}={_staff_token(server, -5)}"})  # fmt: skip
    assert r.status_code == 401 and "Những gì bạn đã nhập được giữ lại" in r.text
    carried = dict(re.findall(r'name="carry:([^"]+)" value="([^"]*)"', r.text))
    assert carried == typed
    login = httpx.post(f"{server.url}/staff/login", data={
        "username": f.station_user, "password": PASSWORD, "next": "/station/checkup",
        **{f"carry:{k}": v for k, v in carried.items()}})  # fmt: skip
    assert login.status_code == 200 and 'action="/station/checkup"' in login.text
    token = re.search(rf"{COOKIE}=([^;]+)", login.headers["set-cookie"]).group(1)  # type: ignore[union-attr]
    resumed = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', login.text))
    assert resumed == typed
    sent = httpx.post(f"{server.url}/station/checkup", data=resumed,
                      headers={"Cookie": f"{COOKIE}={token}"})  # fmt: skip
    # the station's own answer (saved, or asking to confirm/correct), the values typed kept
    assert sent.status_code != 401 and "staff/login" not in sent.headers.get("location", "")
    assert "Những gì bạn đã nhập" not in sent.text
    if sent.status_code == 422:
        assert 'value="156"' in sent.text and 'value="131"' in sent.text


def test_disabled_account_out_at_next_request(server) -> None:  # type: ignore[no-untyped-def]
    token = _staff_token(server, SESSION_TTL)
    assert _get(server, "/station/checkup", token).status_code == 200
    with server.db.connection() as conn:
        account = acc.find_account(conn, server.family.station_user)
        assert account is not None
        acc.set_active(conn, int(account.id), False, reason="test")
    try:
        r = _get(server, "/station/checkup", token)  # the very next request
        assert r.status_code == 303 and "/staff/login" in r.headers["location"]
        assert "set-cookie" not in r.headers  # never renewed
    finally:
        with server.db.connection() as conn:
            acc.set_active(conn, int(account.id), True)


def test_api_answers_alike_past_the_sms_limit(server) -> None:  # type: ignore[no-untyped-def]
    """The API never tells which accounts exist: past an account's SMS limit it answers as for
    an unknown number (only the page, which shows the masked phone, says the limit)."""
    f = server.family
    for _ in range(auth.OTP_PER_WINDOW + 1):
        known = httpx.post(f"{server.url}/auth/otp", json={"identifier": f.mother_cccd})
        unknown = httpx.post(f"{server.url}/auth/otp", json={"identifier": "001199999990"})
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
        assert known.status_code == 202
        with server.db.connection() as conn:
            conn.execute("UPDATE otp_code SET created_at = created_at - interval '61 seconds'")
