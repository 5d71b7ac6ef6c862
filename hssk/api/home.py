"""The home page (where each kind of user starts) and, in demo mode only, the SMS inbox of the
development notification sink (so one-time login codes can be read without a phone)."""

from __future__ import annotations

import html
import os

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hssk.api.deps import Conn

router = APIRouter(include_in_schema=False)

TEXT = {
    "vi": {
        "title": "HSSK — Hồ sơ sức khỏe điện tử",
        "lead": "Nền tảng hồ sơ sức khỏe điện tử: mỗi người dân một hồ sơ suốt đời, "
        "tổng hợp từ bệnh viện, tiêm chủng, dân cư, bảo hiểm và trạm y tế.",
        "citizen": "Người dân: Sổ sức khỏe điện tử",
        "citizen_hint": "Đăng nhập bằng số CCCD hoặc số điện thoại và mã một lần.",
        "staff": "Cán bộ y tế: tra cứu hồ sơ, chuyển tuyến, hẹn khám lại",
        "staff_hint": "Bác sĩ và cán bộ trạm y tế đăng nhập bằng tài khoản được cấp.",
        "supervision": "Sở Y tế: giám sát chia sẻ dữ liệu và độ bao phủ",
        "api": "Tích hợp: FHIR R4 API và tài liệu OpenAPI",
        "sms": "Hộp tin nhắn thử nghiệm (mã đăng nhập một lần)",
        "switch": "English",
        "demo": "Chế độ trình diễn: mọi dữ liệu đều là dữ liệu giả lập.",
        "sms_title": "Tin nhắn của cổng SMS thử nghiệm",
        "sms_empty": "Chưa có tin nhắn nào. Hãy yêu cầu mã đăng nhập trước.",
        "to": "Gửi tới",
        "text": "Nội dung",
        "when": "Thời gian",
        "footer": "Nền tảng hồ sơ sức khỏe điện tử",
    },
    "en": {
        "title": "HSSK — Electronic health records",
        "lead": "Electronic health record platform: one lifelong record per resident, built from "
        "hospitals, immunization, population and insurance registers and health stations.",
        "citizen": "Residents: the health book",
        "citizen_hint": "Log in with your CCCD or phone number and a one-time code.",
        "staff": "Health staff: find a record, referrals, re-examinations",
        "staff_hint": "Clinicians and station staff log in with their issued account.",
        "supervision": "Department of Health: data sharing and coverage dashboards",
        "api": "Integration: FHIR R4 API and OpenAPI documentation",
        "sms": "Test SMS inbox (one-time login codes)",
        "switch": "Tiếng Việt",
        "demo": "Demo mode: all data is synthetic.",
        "sms_title": "Messages of the development SMS gateway",
        "sms_empty": "No message yet. Ask for a login code first.",
        "to": "To",
        "text": "Text",
        "when": "Time",
        "footer": "Electronic health record platform",
    },
}
CSS = """body{font-family:system-ui,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:0;color:#1b1b1b;
background:#f6f8f7;line-height:1.5}header,main,footer{max-width:46rem;margin:auto;padding:1rem}
header{display:flex;justify-content:space-between;align-items:center}h1{font-size:1.5rem;
color:#0b5d3b}a{color:#0a4f8a}ul.cards{list-style:none;padding:0}ul.cards li{background:#fff;
border:1px solid #d0d7d4;border-radius:.5rem;margin:.75rem 0;padding:1rem}ul.cards a{font-weight:600;
font-size:1.1rem}.hint{color:#444;margin:.25rem 0 0}.demo{background:#fff4d6;border:1px solid #e0b84a;
padding:.5rem 1rem;border-radius:.5rem}table{border-collapse:collapse;width:100%;background:#fff}
td,th{border:1px solid #d0d7d4;padding:.4rem;text-align:left}a:focus,button:focus{outline:3px solid #e0b84a}"""


def demo_mode() -> bool:
    """Demo mode is set by ``hssk demo`` (HSSK_DEMO=1); never on a real installation."""
    return os.environ.get("HSSK_DEMO") == "1"


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "vi"
    return lang if lang in TEXT else "vi"


def _page(lang: str, title: str, body: str) -> HTMLResponse:
    t = TEXT[lang]
    other = "en" if lang == "vi" else "vi"
    banner = f'<p class="demo" role="note">{t["demo"]}</p>' if demo_mode() else ""
    return HTMLResponse(
        f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>{CSS}</style></head><body><header><strong>HSSK</strong>
<a href="?lang={other}" lang="{other}">{t["switch"]}</a></header>
<main id="main">{banner}{body}</main><footer>HSSK · {t["footer"]}</footer></body></html>"""
    )


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    lang = _lang(request)
    t = TEXT[lang]
    q = f"?lang={lang}"
    sms = f'<li><a href="/dev/sms{q}">{t["sms"]}</a></li>' if demo_mode() else ""
    body = f"""<h1>{t["title"]}</h1><p>{t["lead"]}</p><ul class="cards">
<li><a href="/book/login{q}">{t["citizen"]}</a><p class="hint">{t["citizen_hint"]}</p></li>
<li><a href="/staff/login{q}">{t["staff"]}</a><p class="hint">{t["staff_hint"]}</p></li>
<li><a href="/supervision{q}">{t["supervision"]}</a></li>
<li><a href="/docs">{t["api"]}</a> · <a href="/fhir/metadata">/fhir/metadata</a></li>{sms}</ul>"""
    resp = _page(lang, t["title"], body)
    resp.set_cookie("lang", lang, samesite="strict")
    return resp


@router.get("/dev/sms", response_class=HTMLResponse)
def dev_sms(request: Request, conn: Conn) -> HTMLResponse:
    """The development sink's messages (demo mode only; 404 otherwise)."""
    lang = _lang(request)
    t = TEXT[lang]
    if not demo_mode():
        return HTMLResponse("Not Found", status_code=404)
    rows = conn.execute(
        "SELECT destination, body, created_at FROM notification ORDER BY id DESC LIMIT 20"
    ).fetchall()
    if rows:
        cells = "".join(
            f"<tr><td>{html.escape(str(d))}</td><td>{html.escape(str(x))}</td>"
            f"<td>{at:%H:%M:%S}</td></tr>"
            for d, x, at in rows
        )
        table = (
            f'<table><thead><tr><th scope="col">{t["to"]}</th><th scope="col">{t["text"]}</th>'
            f'<th scope="col">{t["when"]}</th></tr></thead><tbody>{cells}</tbody></table>'
        )
    else:
        table = f"<p>{t['sms_empty']}</p>"
    return _page(lang, t["sms_title"], f"<h1>{t['sms_title']}</h1>{table}")
