"""The main journeys in a real browser (Debian's headless Chromium), with screenshots for the guide.

Citizen: login with CCCD + one-time code → book → child's schedule → grant and revoke a consent
→ the access log shows it. Clinician: search → basis (emergency) → timeline → referral.
Station: check-up form with a validation error, then saved.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hssk.access.notify import sent_to
from hssk.access.pdfsign import check_pdf
from hssk.web.demo import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# `make screenshots` sets HSSK_SCREENSHOT_DIR=docs/screenshots; a plain test run leaves the
# committed pictures alone.
SHOTS = Path(os.environ.get("HSSK_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "hssk-shots")
PHONE = {"width": 412, "height": 915}
# the two sizes every audience's journey is walked at
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_VN_DATE = re.compile(r"\b\d{2}/\d{2}/\d{4}\b")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def shot(page, name: str, full: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Save a screenshot for the guide, after checking the page's basic accessibility."""
    accessible(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=full)


def accessible(page) -> None:  # type: ignore[no-untyped-def]
    """Every form control has a label, the page has a language and one h1, charts a text."""
    assert page.locator("html").get_attribute("lang") in ("vi", "en")
    assert page.locator("h1").count() == 1
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                           && !e.closest('label'))
              .map(e => e.name)"""
    )
    assert unlabelled == [], unlabelled
    for svg in page.locator("svg.chart").all():
        assert svg.get_attribute("role") == "img" and svg.get_attribute("aria-label")


def no_horizontal_scroll(page) -> None:  # type: ignore[no-untyped-def]
    """The page fits the window's width: nothing to scroll sideways."""
    wide = page.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page scrolls sideways by {wide}px"


def vietnam_dates(text: str) -> None:
    """Dates a person reads are dd/mm/yyyy, never the ISO form kept in storage."""
    assert _VN_DATE.search(text), text[:300]
    assert not _ISO_DATE.search(text), _ISO_DATE.findall(text)


def _code(server, phone: str, after: int) -> str:  # type: ignore[no-untyped-def]
    """The newest one-time code the development sink recorded (the request commits after the
    response is sent, so wait for it briefly)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with server.db.connection() as conn:
            msgs = sent_to(conn, phone)
        if len(msgs) > after:
            m = re.search(r"\b(\d{6})\b", msgs[0])
            assert m, msgs[0]
            return m.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no code was sent to {phone}")


def citizen_login(server, page, size: str) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    with server.db.connection() as conn:  # each walk starts a fresh login (no resend wait)
        conn.execute("DELETE FROM otp_code WHERE purpose = 'login'")
        before = len(sent_to(conn, f.mother_phone, 1000))
    page.goto(server.url + "/book")
    assert "/book/login" in page.url  # not logged in: sent to the login page
    page.fill("#f-identifier", "12345")
    page.click("button[type=submit]")
    assert page.locator("#e-identifier").is_visible()  # a clear error next to the field
    page.fill("#f-identifier", f.mother_cccd)
    no_horizontal_scroll(page)
    shot(page, f"login-identifier-{size}.png")
    page.click("button[type=submit]")
    page.wait_for_selector("#f-code")
    code = _code(server, f.mother_phone, before)
    page.fill("#f-code", code)
    no_horizontal_scroll(page)
    shot(page, f"login-code-{size}.png")
    page.click("button[type=submit]")
    page.wait_for_url("**/book")


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_citizen_journey(server, browser, size: str) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    ctx = browser.new_context(viewport=VIEWPORTS[size], locale="vi-VN")
    page = ctx.new_page()
    citizen_login(server, page, size)
    assert page.locator("html").get_attribute("lang") == "vi"
    requests: list[str] = []

    def seen(request) -> None:  # type: ignore[no-untyped-def]
        requests.append(request.url)

    page.on("request", seen)
    page.reload()
    page.remove_listener("request", seen)
    assert requests == [server.url + "/book"]  # one round trip: CSS inline, charts inline SVG
    assert "Nguyễn Thị Hòa" in page.locator("h1").inner_text()
    for section in (
        "admin",
        "indicators",
        "history",
        "visits",
        "labs",
        "referrals",
        "appointments",
        "documents",
    ):
        assert page.locator(f"#{section}").count() == 1, section
        assert page.locator(f"#{section}").is_visible(), section
    assert "Giấy tờ" in page.locator("#h-docs").inner_text()  # the papers section
    pdf = page.locator("a.button[href$='/book.pdf']")
    assert pdf.is_visible() and "PDF" in pdf.inner_text()
    assert pdf.bounding_box()["width"] <= VIEWPORTS[size]["width"]  # type: ignore[index]
    book = page.locator("main").inner_text()
    vietnam_dates(book)
    no_horizontal_scroll(page)
    assert page.locator("#indicators svg.chart").count() >= 4  # height, weight, BMI, BP, glucose
    assert page.locator("#labs .flag-H").count() >= 1  # high HbA1c / glucose flagged
    assert "Penicilin" in page.locator("#allergies").inner_text()
    no_horizontal_scroll(page)
    shot(page, f"book-overview-{size}.png")
    page.locator("#documents").scroll_into_view_if_needed()
    shot(page, f"book-papers-{size}.png")
    page.locator("#indicators").scroll_into_view_if_needed()
    no_horizontal_scroll(page)
    shot(page, f"book-indicators-{size}.png")

    # a visit: its page and its signed PDF
    page.locator("#visits a").first.click()
    page.wait_for_url("**/visit/**")
    no_horizontal_scroll(page)
    shot(page, f"book-visit-{size}.png")
    href = page.locator("a.button[href$='.pdf']").get_attribute("href")
    resp = page.request.get(server.url + str(href))  # same cookies as the page
    assert resp.status == 200 and resp.headers["content-type"] == "application/pdf"
    check = check_pdf(resp.body())
    assert check.intact and check.signer and "HSSK" in check.signer, check.reason

    # the child's book: TCMR schedule with done / overdue / due
    page.goto(server.url + "/book")
    page.click(f"a[href='/book/p/{f.child}#schedule']")
    page.wait_for_url(f"**/book/p/{f.child}*")
    rows = page.locator("#schedule tbody tr")
    statuses = [rows.nth(i).get_attribute("data-status") for i in range(rows.count())]
    assert statuses.count("done") == 6
    assert "overdue" in statuses and "upcoming" in statuses
    assert "Trần Minh An" in page.locator("h1").inner_text()
    page.locator("#schedule").scroll_into_view_if_needed()
    no_horizontal_scroll(page)
    shot(page, f"book-child-schedule-{size}.png")

    # consents: grant one to Bạch Mai, then revoke it
    page.click("nav.tabs >> text=Chia sẻ dữ liệu")
    page.select_option("#f-unit", f.other_hospital)
    page.click("form[action='/book/consents'] button[type=submit]")
    page.wait_for_url("**done=granted")
    active = page.locator("tr[data-consent] >> text=Bệnh viện Bạch Mai")
    assert active.count() >= 1
    no_horizontal_scroll(page)
    shot(page, f"book-consents-{size}.png")
    clipped = page.locator("button.danger").first.evaluate(
        "b => b.getBoundingClientRect().right - b.closest('.table-wrap').getBoundingClientRect().right"
    )
    assert clipped <= 0, f"the revoke button is cut off by {clipped}px"  # in sight, no scrolling
    page.locator("button.danger").first.click()
    page.wait_for_url("**done=revoked")
    assert page.locator("text=Đã thu hồi quyền xem.").is_visible()
    assert page.locator("button.danger").count() == 0  # nothing left to revoke

    # the access log shows the revocation (and the reads of the book)
    page.click("nav.tabs >> text=Ai đã xem hồ sơ")
    log = page.locator("#log").inner_text()
    for _ in range(50):  # audit events are group-committed just after each response
        if "Thu hồi quyền xem" in log:
            break
        time.sleep(0.1)
        page.reload()
        log = page.locator("#log").inner_text()
    assert "Thu hồi quyền xem" in log and "Cho phép xem hồ sơ" in log  # in words, not codes
    assert "Bạn đã xem sổ của mình" in log  # the citizen's own reads, folded per day
    assert "consent-revoke" not in log and "own-record" not in log
    vietnam_dates(log)
    no_horizontal_scroll(page)
    shot(page, f"book-consents-log-{size}.png")

    # English, remembered in a cookie
    page.goto(server.url + "/book?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto(server.url + "/book/self")
    assert "What you added yourself" in page.locator("h1").inner_text()
    page.goto(server.url + "/book/self?lang=vi")

    # own entries: a validation error next to the field, then saved apart from clinical data
    page.fill("form[action='/book/self/measurement'] #f-date", "01/01/2020")
    page.fill("form[action='/book/self/measurement'] #f-systolic", "80")
    page.fill("form[action='/book/self/measurement'] #f-diastolic", "120")
    page.click("form[action='/book/self/measurement'] button[type=submit]")
    assert "nhỏ hơn tâm thu" in page.locator("#e-diastolic").inner_text()
    page.fill("form[action='/book/self/measurement'] #f-systolic", "125")
    page.fill("form[action='/book/self/measurement'] #f-diastolic", "82")
    page.click("form[action='/book/self/measurement'] button[type=submit]")
    page.wait_for_url("**/book/self?saved=1")
    assert "125" in page.locator("main ul.plain").inner_text()
    assert "01/01/2020" in page.locator("main ul.plain").inner_text()  # the day, as typed
    vietnam_dates(page.locator("main").inner_text())
    no_horizontal_scroll(page)
    shot(page, f"book-self-{size}.png")
    ctx.close()


def staff_login(server, page, username: str, target: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server.url + target)
    assert "/staff/login" in page.url
    page.fill("#f-username", username)
    page.fill("#f-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{target}")


def test_clinician_journey(server, browser) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    ctx = browser.new_context(viewport={"width": 1200, "height": 900}, locale="vi-VN")
    page = ctx.new_page()
    staff_login(server, page, f.clinician, "/clinic")
    page.fill("#f-name", "Nguyen Thi Hoa")
    page.fill("#f-birth", "12/04/1990")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_selector("main table")
    assert "Nguyễn Thị Hòa" in page.locator("main table").inner_text()
    assert int(page.locator(".score").first.inner_text().rstrip("%")) >= 90
    shot(page, "clinician-search.png")
    page.locator(f"a[href='/clinic/p/{f.mother}']").click()

    # no encounter or consent: a basis is required; a short reason is refused
    page.wait_for_selector("textarea#f-reason")
    assert "Chưa có căn cứ" in page.locator(".hint").inner_text()
    page.fill("#f-reason", "cấp cứu")
    page.click("main form button[type=submit]")
    assert page.locator("#e-reason").is_visible()
    page.fill("#f-reason", "Bệnh nhân hôn mê nhập viện cấp cứu, cần tiền sử dùng thuốc")
    shot(page, "clinician-basis.png")
    page.click("main form button[type=submit]")
    page.wait_for_selector("#h-tl")
    assert "khai báo cấp cứu" in page.locator("main").inner_text()
    # results of another facility are offered for reuse
    assert "Bệnh viện Bạch Mai" in page.locator("#reuse").inner_text()
    assert page.locator("tr[data-type=Observation]").count() > 5
    # safety first: the allergy and the active problems above the timeline, vitals with values
    banner = page.locator("#safety").inner_text()
    assert "Penicilin" in banner and "Nổi mề đay" in banner
    assert page.locator("#allergies .allergy.high").count() == 1
    assert "Tăng huyết áp" in page.locator("#problems").inner_text()
    bp_rows = page.locator("tr[data-type=Observation]", has_text="Huyết áp").all_inner_texts()
    assert any("128/82 mmHg" in row for row in bp_rows), bp_rows
    shot(page, "clinician-timeline.png")

    # referral: a malformed ICD code is refused next to the field, then the letter is saved
    page.click("text=Viết giấy chuyển tuyến")
    assert "Penicilin" in page.locator("#safety").inner_text()  # on every page of the person
    page.select_option("#f-to_unit", f.other_hospital)
    page.fill("#f-icd", "110")
    page.fill("#f-diagnosis", "Tăng huyết áp")
    page.fill("#f-reason", "Khám chuyên khoa tim mạch")
    page.click("main form button[type=submit]")
    assert "ICD-10" in page.locator("#e-icd").inner_text()
    assert "Penicilin" in page.locator("#safety").inner_text()  # also when the form comes back
    # an assault code for a hypertension: flagged, kept only when confirmed consciously
    page.fill("#f-icd", "X99")
    page.click("main form button[type=submit]")
    assert "Chương XX" in page.locator("#e-icd").inner_text()
    assert page.locator("input[name=icd_confirmed]").is_visible()
    assert page.locator("#f-reason").input_value() == "Khám chuyên khoa tim mạch"  # kept
    page.fill("#f-icd", "I10")
    page.click("main form button[type=submit]")
    # whose record: the patient is shown and confirmed before saving
    assert page.locator("[data-testid=confirm]").is_visible()
    assert "Nguyễn Thị Hòa" in page.locator("[data-testid=person-card]").inner_text()
    shot(page, "clinician-referral.png")
    page.click("[data-testid=confirm-save]")
    page.wait_for_url("**saved=referral")
    assert (
        "giấy chuyển tuyến của Nguyễn Thị Hòa" in page.locator("[data-testid=saved]").inner_text()
    )
    assert page.locator("tr[data-type=ServiceRequest]").count() >= 2

    # re-examination appointment: a past date is refused, a future one saved
    page.click("text=Hẹn khám lại")
    page.fill("#f-date", "01/01/2020")
    page.fill("#f-reason", "Tái khám huyết áp")
    page.click("main form button[type=submit]")
    assert "sau hôm nay" in page.locator("#e-date").inner_text()
    page.fill("#f-date", "15/12/2099")
    page.click("main form button[type=submit]")
    page.click("[data-testid=confirm-save]")
    page.wait_for_url("**saved=appointment")
    assert "Tái khám huyết áp" in page.locator("tr[data-type=Appointment]").first.inner_text()
    ctx.close()


def test_station_journey(server, browser) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    ctx = browser.new_context(viewport=PHONE, locale="vi-VN")
    page = ctx.new_page()
    staff_login(server, page, f.station_user, "/station/checkup")
    page.fill("#f-cccd", f.mother_cccd)
    page.select_option("#f-kind", "sang-loc")
    page.fill("#f-height", "156")
    page.fill("#f-weight", "590")  # a typing slip: 590 kg
    page.fill("#f-systolic", "135")
    page.fill("#f-diastolic", "85")
    page.fill("#f-glucose", "6,1")  # decimal comma is accepted
    page.click("main form button[type=submit]")
    error = page.locator("#e-weight")
    assert "ngoài khoảng hợp lý" in error.inner_text()
    assert page.locator("#f-weight").get_attribute("aria-invalid") == "true"
    assert page.locator("#f-height").input_value() == "156"  # what was typed is kept
    shot(page, "station-checkup-error.png", full=True)
    page.fill("#f-weight", "59")
    page.click("main form button[type=submit]")
    # whose record: shown and confirmed before anything is saved
    card = page.locator("[data-testid=person-card]").inner_text()
    assert "Nguyễn Thị Hòa" in card and f.mother_cccd not in card and f.mother_cccd[-3:] in card
    page.click("[data-testid=confirm-save]")
    page.wait_for_url(f"**saved={f.mother}")
    assert (
        "Đã lưu phiếu khám của Nguyễn Thị Hòa" in page.locator("[data-testid=saved]").inner_text()
    )

    # the screening result is in the citizen's book (BMI computed)
    with server.db.connection() as conn:
        from hssk.records import everything

        obs = [r.body for r in everything(conn, f.mother, ["Observation"])]
    bmi = [o for o in obs if o["code"]["coding"][0]["code"] == "39156-5"]
    assert any(o["valueQuantity"]["value"] == 24.2 for o in bmi)

    # a death notice without a cause is refused
    page.goto(server.url + "/station/death")
    page.fill("#f-cccd", f.outsider_cccd)
    page.click("main form button[type=submit]")
    assert page.locator("#e-cause").is_visible()
    shot(page, "station-death-error.png")
    # … and a person living outside the station's commune is refused, next to the CCCD
    page.fill("#f-cause", "Nhồi máu cơ tim")
    page.click("main form button[type=submit]")
    assert "commune" in page.locator("#e-cccd").inner_text()

    # a household change of a resident is accepted
    page.goto(server.url + "/station/household")
    page.fill("#f-cccd", f.mother_cccd)
    page.select_option("#f-action", "join")
    page.fill("#f-household_code", "HD-0042")
    page.click("main form button[type=submit]")
    assert "Không có hộ mã HD-0042" in page.locator("#e-household_code").inner_text()
    page.select_option("#f-action", "new")  # this person founds it
    page.click("main form button[type=submit]")
    page.click("[data-testid=confirm-save]")
    page.wait_for_url(f"**saved={f.mother}")
    with server.db.connection() as conn:
        row = conn.execute(
            "SELECT h.code FROM person p JOIN household h ON h.id = p.household_id WHERE p.id = %s",
            (f.mother,),
        ).fetchone()
    assert row == ("HD-0042",)  # applied to the person at once
    ctx.close()


def test_login_code_page_on_a_phone(server, browser) -> None:  # type: ignore[no-untyped-def]
    """390×844: the code page names the masked phone (never the CCCD), a wrong code says how
    many tries are left, and the resend button counts down, then re-enables and sends."""
    f = server.family
    with server.db.connection() as conn:
        conn.execute("DELETE FROM login_failure")
        conn.execute("DELETE FROM otp_code WHERE purpose = 'login'")
        before = len(sent_to(conn, f.mother_phone, 1000))
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
    page = ctx.new_page()
    page.goto(server.url + "/book/login")
    page.fill("#f-identifier", f.mother_cccd)
    page.click("button[type=submit]")
    page.wait_for_selector("#f-code")
    masked = f"{f.mother_phone[:2]}••\xa0•••\xa0{f.mother_phone[-3:]}"  # no-break spaces
    assert masked in page.locator("#sent-to").inner_text()
    assert page.locator("#resend").is_disabled()
    first = page.locator("#resend-wait").inner_text()
    page.wait_for_timeout(1500)  # the countdown runs (the script passes the content policy)
    second = page.locator("#resend-wait").inner_text()
    seconds = [int(re.search(r"(\d+) giây", s).group(1)) for s in (first, second)]  # type: ignore[union-attr]
    assert seconds[0] <= 60 and seconds[1] < seconds[0], (first, second)
    with server.db.connection() as conn:  # most of the wait has passed
        conn.execute("UPDATE otp_code SET created_at = created_at - interval '50 seconds' "
                     "WHERE purpose = 'login'")  # fmt: skip
    page.fill("#f-code", "000000")
    page.click("button[type=submit]")
    page.wait_for_selector("#e-code")
    assert "Bạn còn 4 lần thử" in page.locator("#e-code").inner_text()
    body = page.locator("main").inner_text()
    assert masked in body and f.mother_cccd not in body
    shot(page, "login-wrong-code.png")
    page.locator("#resend:not([disabled])").wait_for(timeout=15000)
    assert "Chưa nhận được mã" in page.locator("#resend-wait").inner_text()
    page.click("#resend")
    page.wait_for_selector("#resend[disabled]")
    assert masked in page.locator("#sent-to").inner_text()
    _code(server, f.mother_phone, before + 1)  # a second code went out
    ctx.close()
