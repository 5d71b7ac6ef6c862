"""Commune-station and clinician journeys in Debian's Chromium, on a phone (390×844) and a
desktop (1366×900): impossible dates and unknown households are refused with what was typed
kept, the person is confirmed before saving and named after, a second death leads to the
audited correction, an ICD code outside its diagnosis's chapter is flagged; the clinician sees
tests, diagnoses and facilities by their Vietnamese names and a search score labelled as $match
scores it. Screenshots go to ``HSSK_SCREENSHOT_DIR`` (``make screenshots``: docs/screenshots)."""

from __future__ import annotations

from typing import Any

import pytest

from hssk.access import accounts
from hssk.kernel import clock
from hssk.registry import SourceRecord, link
from hssk.web.demo import PASSWORD
from tests.web.test_web_journeys import CHROMIUM, browser, shot, staff_login

__all__ = ["browser"]  # the module's browser fixture

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium"
)


ELDERS = {"phone": ("Phùng Văn Thọ", "001050003901"), "desktop": ("Đinh Văn Phúc", "001050001366")}


def _resident(server: Any, tag: str) -> tuple[int, str]:
    """A resident of the station's commune (born 1950) for a death notice."""
    name, cccd = ELDERS[tag]
    with server.db.connection() as conn:
        commune = conn.execute(
            "SELECT commune_code FROM person WHERE id = %s", (server.family.mother,)
        ).fetchone()
        rec = SourceRecord("demo", f"elder-{tag}", full_name=name,
                           birth_date="1950-02-10", sex="M", cccd=cccd,
                           commune_code=commune[0] if commune else None)  # fmt: skip
        return link(conn, rec).person_id, cccd


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_station_forms_journey(server, browser, size: str) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    ctx = browser.new_context(viewport=VIEWPORTS[size], locale="vi-VN")
    page = ctx.new_page()
    staff_login(server, page, f.station_user, "/station/checkup")
    today = clock.today().strftime("%d/%m/%Y")
    assert page.locator("#f-date").input_value() == today  # today in Vietnam

    # a check-up dated 1890: refused next to the date, everything typed kept
    page.fill("#f-cccd", f.mother_cccd)
    page.select_option("#f-kind", "ksk-dinh-ky")
    page.fill("#f-date", "01/01/1890")
    page.fill("#f-weight", "58")
    page.fill("#f-systolic", "142")
    page.fill("#f-diastolic", "91")
    page.fill("#f-icd", "X99")  # an assault code for a hypertension
    page.fill("#f-conclusion", "Tăng huyết áp")
    page.click("main form button[type=submit]")
    assert "trước ngày sinh của người này (12/04/1990)" in page.locator("#e-date").inner_text()
    assert "Chương XX" in page.locator("#e-icd").inner_text()
    assert page.locator("#f-weight").input_value() == "58"
    assert page.locator("[data-testid=person-card]").is_visible()  # whose record, already
    shot(page, f"station-checks-{size}.png", full=True)

    # the right date and code: the person is shown (masked CCCD) and confirmed before saving
    page.fill("#f-date", today)
    page.fill("#f-icd", "I10")
    page.click("main form button[type=submit]")
    card = page.locator("[data-testid=person-card]").inner_text()
    assert "Nguyễn Thị Hòa" in card and "1990" in card
    assert f.mother_cccd not in card and f.mother_cccd[:3] in card and "•" in card
    shot(page, f"station-confirm-{size}.png", full=True)
    page.click("[data-testid=confirm-save]")
    page.wait_for_url(f"**saved={f.mother}")
    saved = page.locator("[data-testid=saved]").inner_text()
    assert "Đã lưu phiếu khám của Nguyễn Thị Hòa (sinh năm 1990" in saved
    shot(page, f"station-saved-{size}.png")

    # a household that does not exist
    page.goto(server.url + "/station/household")
    page.fill("#f-cccd", f.mother_cccd)
    page.select_option("#f-action", "join")
    page.fill("#f-household_code", f"HO-KHONG-CO-{size}")
    page.click("main form button[type=submit]")
    assert f"Không có hộ mã HO-KHONG-CO-{size}" in page.locator("#e-household_code").inner_text()
    shot(page, f"station-household-unknown-{size}.png", full=True)

    # a death, then a second one: refused, with the way to the audited correction
    pid, cccd = _resident(server, size)
    page.goto(server.url + "/station/death")
    page.fill("#f-cccd", cccd)
    page.fill("#f-date", "01/01/1949")  # before birth
    page.fill("#f-cause", "Nhồi máu cơ tim")
    page.click("main form button[type=submit]")
    assert "trước ngày sinh" in page.locator("#e-date").inner_text()
    page.fill("#f-date", "03/11/2026")
    page.click("main form button[type=submit]")
    page.click("[data-testid=confirm-save]")
    page.wait_for_url(f"**saved={pid}")
    assert (
        f"Đã lưu báo tử của {ELDERS[size][0]}" in page.locator("[data-testid=saved]").inner_text()
    )
    page.fill("#f-cccd", cccd)
    page.fill("#f-date", "05/11/2026")
    page.fill("#f-cause", "Nhồi máu cơ tim")
    page.click("main form button[type=submit]")
    assert "đã được ghi nhận tử vong ngày 03/11/2026" in page.locator("#e-date").inner_text()
    shot(page, f"station-death-second-{size}.png", full=True)
    page.click("[data-testid=amend-link]")
    assert page.locator("#f-cccd").input_value() == cccd
    page.fill("#f-date", "05/11/2026")
    page.fill("#f-reason", "Giấy báo tử số 31/GBT của bệnh viện ghi ngày 05/11/2026")
    page.click("main form button[type=submit]")
    page.click("[data-testid=confirm-save]")
    page.wait_for_url(f"**saved={pid}")
    assert (
        f"Đã đính chính ngày mất của {ELDERS[size][0]}"
        in page.locator("[data-testid=saved]").inner_text()
    )
    shot(page, f"station-death-amended-{size}.png")
    with server.db.connection() as conn:
        row = conn.execute(
            "SELECT detail->>'died_on' FROM audit_event WHERE action = 'death-amend'"
            " AND person_id = %s",
            (pid,),
        ).fetchone()
    assert row == ("2026-11-05",)
    ctx.close()


def _clinician(server: Any) -> str:
    """A clinician of the family's hospital of this module's own: the emergency access it
    opens is its own (the other journeys expect none for theirs)."""
    with server.db.connection() as conn:
        if accounts.find_account(conn, "bs.forms") is None:
            accounts.create_account(conn, "bs.forms", "clinician", unit_id=server.family.hospital,
                                    roles=("clinician",), password=PASSWORD,
                                    display_name="BS. Hà Minh Tâm")  # fmt: skip
    return "bs.forms"


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_clinician_forms_journey(server, browser, size: str) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    ctx = browser.new_context(viewport=VIEWPORTS[size], locale="vi-VN")
    page = ctx.new_page()
    staff_login(server, page, _clinician(server), "/clinic")
    page.fill("#f-name", "Nguyễn Thị Hòa")
    page.fill("#f-birth", "12/04/1990")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_selector("main table")
    assert "chắc chắn đúng người" in page.locator("main table").inner_text()
    assert "$match" in page.locator("#score-help").inner_text()
    shot(page, f"clinician-search-{size}.png", full=True)
    page.locator(f"a[href='/clinic/p/{f.mother}']").click()
    if page.locator("textarea#f-reason").count():  # no basis yet in this session
        page.fill("#f-reason", "Bệnh nhân hôn mê nhập viện cấp cứu, cần tiền sử dùng thuốc")
        page.click("main form button[type=submit]")
    page.wait_for_selector("#h-tl")

    # vital signs with values and units; tests by their Vietnamese names, the code small
    bp = page.locator("tr[data-type=Observation]", has_text="Huyết áp").all_inner_texts()
    assert any("128/82 mmHg" in row for row in bp), bp
    glucose = page.locator("tr[data-type=Observation]", has_text="LOINC 2339-0").first
    assert "Đường huyết" in glucose.inner_text()
    assert glucose.locator("small.code").inner_text() == "LOINC 2339-0"
    shot(page, f"clinician-timeline-{size}.png", full=True)

    # a referral coded X99 for a hypertension: flagged; corrected, confirmed, saved, named
    page.click("text=Viết giấy chuyển tuyến")
    page.select_option("#f-to_unit", f.other_hospital)
    page.fill("#f-icd", "X99")
    page.fill("#f-diagnosis", "Tăng huyết áp")
    page.fill("#f-reason", "Khám chuyên khoa tim mạch")
    page.click("main form button[type=submit]")
    assert "Chương XX" in page.locator("#e-icd").inner_text()
    assert page.locator("#f-reason").input_value() == "Khám chuyên khoa tim mạch"
    shot(page, f"clinician-referral-icd-{size}.png", full=True)
    page.fill("#f-icd", "I10")
    page.click("main form button[type=submit]")
    assert "Nguyễn Thị Hòa" in page.locator("[data-testid=person-card]").inner_text()
    shot(page, f"clinician-referral-confirm-{size}.png", full=True)
    page.click("[data-testid=confirm-save]")
    page.wait_for_url("**saved=referral")
    assert (
        "giấy chuyển tuyến của Nguyễn Thị Hòa" in page.locator("[data-testid=saved]").inner_text()
    )
    ctx.close()
