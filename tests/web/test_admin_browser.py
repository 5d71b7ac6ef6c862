"""The admin console and the citizen's access log in a real browser (Debian's Chromium), on a
phone (390×844) and a desktop (1366×900), with screenshots for the guide."""

from __future__ import annotations

import time

import pytest

from hssk.access import accounts, signing
from hssk.access.tokens import issue
from hssk.kernel.config import load_settings
from hssk.web.demo import PASSWORD
from tests.web.test_web_journeys import CHROMIUM, browser, shot, staff_login  # noqa: F401

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium"
)
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}
NAMES = {"phone": ("BS. Nguyễn Minh Thư", "Minh Thư"), "desktop": ("BS. Trần Thị Thu", "thị thu")}


@pytest.fixture(scope="module")
def admin_user(server) -> str:  # type: ignore[no-untyped-def]
    """An administrator of a department with a hospital under it."""
    with server.db.connection() as conn:
        accounts.create_unit(conn, "SYT-BR", "department", "Sở Y tế Hà Nội (thử)")
        accounts.create_unit(conn, "BV-BR", "hospital", "Bệnh viện Thanh Nhàn (thử)",
                             parent_id="SYT-BR", facility_code="09950")  # fmt: skip
        if accounts.find_account(conn, "qt.mai") is None:
            accounts.create_account(conn, "qt.mai", "staff", unit_id="SYT-BR", roles=("admin",),
                                    password=PASSWORD, display_name="QT. Lê Thị Mai")  # fmt: skip
    return "qt.mai"


def _login(server, page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server.url + "/staff/login")
    page.fill("#f-username", username)
    page.fill("#f-password", PASSWORD)
    page.click("button[type=submit]")


def _no_horizontal_scroll(page) -> None:  # type: ignore[no-untyped-def]
    wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 1, f"the page scrolls sideways by {wide}px"


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_admin_console_journey(server, browser, admin_user: str, size: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ctx = browser.new_context(viewport=SIZES[size], locale="vi-VN")
    page = ctx.new_page()
    _login(server, page, admin_user)
    page.wait_for_url("**/admin")  # the administrator lands on the console
    assert "Quản trị hệ thống" in page.locator("h1").inner_text()
    menu = page.locator("nav.tabs a").all_inner_texts()
    assert menu == ["Tổng quan", "Đơn vị", "Tài khoản", "Khóa và chứng thư số"]
    _no_horizontal_scroll(page)
    shot(page, f"admin-overview-{size}.png", full=True)

    # a new account: errors next to their fields, then created, awaiting activation
    user = f"bs.thu.{size}"
    page.goto(server.url + "/admin/accounts/new")
    page.fill("#f-username", "bs thu")
    page.fill("#f-phone", "123")
    page.click("main form button[type=submit]")
    assert "3–64" in page.locator("#e-username").inner_text()
    assert "10 chữ số" in page.locator("#e-phone").inner_text()
    shot(page, f"admin-account-new-{size}.png", full=True)  # each error next to its field
    page.fill("#f-username", user)
    name, part = NAMES[size]
    page.fill("#f-display_name", name)
    page.select_option("#f-kind", "clinician")
    page.select_option("#f-unit_id", "BV-BR")
    page.fill("#f-phone", "0987 654 321")
    page.check("input[name=role][value=clinician]")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/admin/accounts/*?done=created")
    assert page.locator("#acc-state").inner_text() == "Chờ kích hoạt"
    page.click("#send-code")
    page.wait_for_url("**done=activation")
    assert "098••••321" in page.locator("main").inner_text()
    page.fill("#f-reason", "Chuyển công tác")
    page.click("#disable")
    page.wait_for_url("**done=disable")
    assert page.locator("#acc-state").inner_text() == "Đã khóa"
    assert "Chuyển công tác" in page.locator("main").inner_text()
    _no_horizontal_scroll(page)
    shot(page, f"admin-account-{size}.png", full=True)
    page.click("#enable")
    page.wait_for_url("**done=enable")

    # the list finds it by part of the name (any letter case)
    page.click("nav.tabs >> text=Tài khoản")
    page.fill("#f-q", part)
    page.click("form[role=search] button[type=submit]")
    rows = page.locator("tr[data-account]")
    assert rows.count() == 1 and user in rows.first.inner_text()
    _no_horizontal_scroll(page)
    shot(page, f"admin-accounts-{size}.png", full=True)

    # a unit's key rotated: the new one added next to the old one, then the old one revoked
    kids = []
    for _ in range(2):
        _private, public = signing.generate_keypair("EdDSA")
        kids.append(signing.key_id(signing.parse_public(public)[0]))
        page.goto(server.url + "/admin/units/BV-BR")
        page.fill("#f-pem", public.decode())
        page.click("form[action='/admin/units/BV-BR/keys'] button[type=submit]")
        page.wait_for_url("**done=key-added**")
    old, new = (page.locator(f"tr[data-kid='{k}']") for k in kids)
    assert old.locator(".badge").inner_text() == new.locator(".badge").inner_text() == "Đang dùng"
    old.locator("button.danger").click()
    page.wait_for_url("**done=key-revoked**")
    assert page.locator(f"tr[data-kid='{kids[0]}'] .badge").inner_text() == "Đã thu hồi"
    assert page.locator(f"tr[data-kid='{kids[1]}'] .badge").inner_text() == "Đang dùng"
    _no_horizontal_scroll(page)
    shot(page, f"admin-unit-{size}.png", full=True)
    page.click("nav.tabs >> text=Khóa và chứng thư số")
    assert "Khóa ký của nền tảng" in page.locator("main").inner_text()
    shot(page, f"admin-keys-{size}.png", full=True)
    ctx.close()


def test_a_clinician_meets_a_403_page_not_json(server, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ctx = browser.new_context(viewport=SIZES["phone"], locale="vi-VN")
    page = ctx.new_page()
    staff_login(server, page, server.family.clinician, "/clinic")
    assert page.locator("nav.tabs a[href='/admin']").count() == 0  # no entry that answers 403
    resp = page.goto(server.url + "/admin")
    assert resp is not None and resp.status == 403
    assert "chỉ dành cho quản trị viên" in page.locator(".err-box").inner_text()
    shot(page, "admin-forbidden.png")
    ctx.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_citizen_access_log_in_words(server, browser, size: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    f = server.family
    # a clinician declares an emergency and writes a referral through the pages
    ctx = browser.new_context(viewport=SIZES["desktop"], locale="vi-VN")
    page = ctx.new_page()
    staff_login(server, page, f.clinician, "/clinic")
    page.goto(f"{server.url}/clinic/p/{f.mother}")
    if page.locator("textarea#f-reason").count():
        page.fill("#f-reason", "Bệnh nhân hôn mê nhập viện cấp cứu, cần tiền sử dùng thuốc")
        page.click("main form button[type=submit]")
        page.wait_for_selector("#h-tl")
    page.goto(f"{server.url}/clinic/p/{f.mother}/referral")
    page.select_option("#f-to_unit", f.other_hospital)
    page.fill("#f-icd", "I10")
    page.fill("#f-diagnosis", "Tăng huyết áp")
    page.fill("#f-reason", "Khám chuyên khoa tim mạch")
    page.click("main form button[type=submit]")
    page.click("[data-testid=confirm-save]")  # the patient is confirmed before saving
    page.wait_for_url("**saved=referral")
    ctx.close()

    with server.db.connection() as conn:
        citizen = accounts.find_account(conn, f"citizen.{f.mother}")
    assert citizen is not None
    token = issue(load_settings(), citizen.actor(), ttl=900)
    ctx = browser.new_context(viewport=SIZES[size], locale="vi-VN")
    ctx.add_cookies([{"name": "hssk_token", "value": token, "url": server.url}])
    page = ctx.new_page()
    for _ in range(3):
        page.goto(server.url + "/book")
    page.goto(server.url + "/book/access-log")
    log = page.locator("#log").inner_text()
    for _ in range(50):  # audit events are group-committed just after each response
        if "giấy chuyển tuyến" in log:
            break
        time.sleep(0.1)
        page.reload()
        log = page.locator("#log").inner_text()
    assert "Ghi mới vào hồ sơ: giấy chuyển tuyến" in log  # a write, shown as a write
    write = page.locator("#log li.write", has_text="giấy chuyển tuyến").first
    assert "Bị từ chối" not in write.inner_text()
    assert "Khẩn cấp (cấp cứu)" in write.inner_text()
    assert (
        "BS. Phạm Thị Lan" in write.inner_text()
        and "Bệnh viện Đa khoa Hà Đông" in write.inner_text()
    )
    assert "cấp cứu" in page.locator("#emergency-note").inner_text()
    assert "Bạn đã xem sổ của mình" in log
    own_lines = page.locator("#log li.own").count()
    days = len({d for d in page.locator("#log li.own time").all_inner_texts()})
    assert own_lines == days  # one line per day for the citizen's own reads
    for code in ("break-glass", "own-record", "create", "deny"):
        assert code not in log, code
    _no_horizontal_scroll(page)
    shot(page, f"book-access-log-{size}.png", full=True)
    page.goto(server.url + "/book/access-log?lang=en")
    assert "Wrote to the record: referral letter" in page.locator("#log").inner_text()
    page.goto(server.url + "/book/access-log?lang=vi")
    ctx.close()
    with server.db.connection() as conn:  # the next journeys start without an open emergency
        conn.execute("UPDATE break_glass SET expires_at = now() WHERE person_id = %s", (f.mother,))
