"""Logging in and out: citizens by CCCD or phone and a one-time code (``/book/login``), health
workers by name, password and TOTP (``/staff/login``). Handlers are plain ``def``: logging in
reads the database and checks an argon2 password, never on the event loop."""

from __future__ import annotations

import re
from datetime import timedelta
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hssk.api.bodies import FormFields
from hssk.api.deps import Conn
from hssk.http import gate
from hssk.http.client import client_address
from hssk.kernel import clock
from hssk.web import backend, render
from hssk.web.i18n import t
from hssk.web.pages.guards import CARRY, safe_next

router = APIRouter(include_in_schema=False)
_CCCD = re.compile(r"^\d{12}$")
_PHONE = re.compile(r"^0\d{9}$")


@router.get("/book/login", include_in_schema=False, response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return render.page(
        request, "login.html", step="identifier", next=request.query_params.get("next", "/book")
    )


@router.post("/book/login", include_in_schema=False, response_class=HTMLResponse)
def login_submit(request: Request, conn: Conn, form: FormFields) -> Response:
    lang = render.lang_of(request)
    identifier = re.sub(r"[\s.\-]", "", str(form.get("identifier", "")))
    nxt = safe_next(str(form.get("next", "/book")))
    code = "" if form.get("resend") else str(form.get("code", "")).strip()
    ctx: dict[str, Any] = {"next": nxt, "identifier": identifier}
    if not (_CCCD.match(identifier) or _PHONE.match(identifier)):
        return render.page(
            request,
            "login.html",
            step="identifier",
            errors={"identifier": t("bad_identifier", lang)},
            status=422,
            **ctx,
        )
    settings = request.app.state.settings
    address = client_address(request)
    try:
        if not code:
            sent = backend.start_login(conn, settings, identifier, address)
            return _code_step(request, sent, **ctx)
        token = backend.finish_login(conn, settings, identifier, code, address)
    except backend.LoginRefused as exc:
        sent = backend.login_code(conn, identifier)
        error = {"code" if sent else "identifier": _login_refusal(exc, lang)}
        return _code_step(request, sent, errors=error, status=422, **ctx)
    resp = RedirectResponse(nxt, status_code=303)
    gate.set_session_cookie(request, resp, token)
    return resp


def _code_step(request: Request, sent: backend.LoginCode | None, **ctx: Any) -> Response:
    """The page asking for the code: where it went (masked, never the identifier in full) and
    when a new one may be asked for."""
    if sent is None and "errors" in ctx:  # refused before any code went out
        return render.page(request, "login.html", step="identifier", **ctx)
    return render.page(
        request,
        "login.html",
        step="code",
        sent_to=sent.destination if sent else None,
        masked_identifier=render.masked(ctx["identifier"], keep=2),
        resend_in=sent.resend_in if sent else 0,
        **ctx,
    )


def _login_refusal(exc: backend.LoginRefused, lang: str) -> str:
    """The login refusal's reason (from the access component) in the reader's language."""
    if exc.reason in ("throttled", "sms_limit"):
        wait = max(exc.retry_after, 1)
        at = clock.to_vn(clock.now() + timedelta(seconds=wait)).strftime("%H:%M")
        words = (t("wait_minutes", lang, m=wait // 60, s=wait % 60) if wait >= 60
                 else t("wait_seconds", lang, s=wait))  # fmt: skip
        return t(exc.reason, lang, wait=words, at=at)
    if exc.reason in ("expired_code", "code_exhausted"):
        return t(exc.reason, lang)
    if exc.attempts_left:
        return t("wrong_code_left", lang, n=exc.attempts_left)
    return t("wrong_code", lang)


_SCRIPT = resources.files("hssk.web").joinpath("static/resend.js")


@router.get("/static/resend.js", include_in_schema=False)
def resend_script() -> Response:
    """The login page's countdown (the content policy allows the site's own scripts only)."""
    return Response(_SCRIPT.read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip


@router.get("/book/logout", include_in_schema=False)
def logout(staff: int = 0) -> Response:
    resp = RedirectResponse("/staff/login" if staff else "/book/login", status_code=303)
    gate.clear_session_cookie(resp)
    return resp


@router.get("/staff/login", include_in_schema=False, response_class=HTMLResponse)
def staff_login_page(request: Request) -> Response:
    expired = request.query_params.get("expired") == "1"
    notice = t("session_expired", render.lang_of(request)) if expired else None
    return render.page(
        request,
        "staff_login.html",
        next=safe_next(request.query_params.get("next", "/staff/start"), "/staff/start"),
        notice=notice,
    )


@router.post("/staff/login", include_in_schema=False, response_class=HTMLResponse)
def staff_login_submit(request: Request, conn: Conn, raw: FormFields) -> Response:
    lang = render.lang_of(request)
    nxt = safe_next(raw.get("next") or "/staff/start", "/staff/start")
    # a form an expired session interrupted, carried through the login (never the password)
    carry = {k.removeprefix(CARRY): v for k, v in raw.items() if k.startswith(CARRY)}
    try:
        token = backend.staff_login(
            conn,
            request.app.state.settings,
            raw.get("username", ""),
            raw.get("password", ""),
            raw.get("otp") or None,
            client_address(request),
        )
    except backend.Refused as exc:
        return render.page(
            request,
            "staff_login.html",
            errors={"password": str(exc) or t("bad_code", lang)},
            next=nxt,
            carry=carry,
            status=422,
        )
    resp: Response = RedirectResponse(nxt, status_code=303)
    if carry:  # the interrupted form, ready to be sent on with the new session
        resp = render.page(request, "resume.html", action=nxt, carry=carry)
    gate.set_session_cookie(request, resp, token)
    return resp
