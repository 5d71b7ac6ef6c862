"""The admin console (/admin): the same rules as /api/v1 (hssk.access.admin), every change
audited, forms checked for cross-site origin, a proper 403 page for non-administrators and a
menu without entries a person cannot use."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from hssk.access import accounts
from hssk.access.actor import Actor
from hssk.access.admin import AdminError, UnitSpec, create_unit, managed_units, update_unit
from hssk.app import create_app
from hssk.db import Database
from hssk.kernel.config import load_settings
from hssk.web.demo import PASSWORD
from hssk.web.menu import staff_menu


@dataclass(frozen=True)
class Org:
    admin: str
    sub_admin: str
    clinician: str
    station_user: str


@pytest.fixture(scope="module")
def org(db: Database) -> Org:
    """A department with a hospital and a station under it; a district centre with its own
    administrator below the department."""
    with db.connection() as conn:
        conn.execute("DELETE FROM account WHERE username LIKE 'adm-t.%'")
        for uid, kind, name, parent, fac in (
            ("SYT-T", "department", "Sở Y tế thử", None, None),
            ("BV-T", "hospital", "Bệnh viện thử", "SYT-T", "09901"),
            ("TTYT-T", "district_centre", "Trung tâm y tế khu vực thử", "SYT-T", None),
            ("TYT-T", "station", "Trạm y tế thử", "TTYT-T", None),
        ):
            accounts.create_unit(conn, uid, kind, name, parent_id=parent, facility_code=fac)
        for user, kind, unit, roles in (
            ("adm-t.chinh", "staff", "SYT-T", ("admin",)),
            ("adm-t.khuvuc", "staff", "TTYT-T", ("admin",)),
            ("adm-t.bs", "clinician", "BV-T", ("clinician",)),
            ("adm-t.tram", "staff", "TYT-T", ("station",)),
        ):
            accounts.create_account(conn, user, kind, unit_id=unit, roles=roles,
                                    password=PASSWORD, display_name=f"Tài khoản {user}")  # fmt: skip
    return Org("adm-t.chinh", "adm-t.khuvuc", "adm-t.bs", "adm-t.tram")


@pytest.fixture
def client(db: Database, org: Org) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(), db=db)) as c:
        yield c


def login(client: TestClient, username: str) -> str:
    """Log in through the staff login page; where it lands."""
    resp = client.post("/staff/login", data={"username": username, "password": PASSWORD},
                       follow_redirects=False)  # fmt: skip
    assert resp.status_code == 303, resp.text
    target = resp.headers["location"]
    landed = client.get(target, follow_redirects=False)
    return str(landed.headers.get("location", target))


def _actor(db: Database, username: str) -> Actor:
    with db.connection() as conn:
        acc = accounts.find_account(conn, username)
    assert acc is not None
    return acc.actor()


def test_admin_lands_on_the_console_and_others_on_their_work(client: TestClient, org: Org) -> None:
    assert login(client, org.admin) == "/admin"
    page = client.get("/admin")
    assert page.status_code == 200
    assert "Quản trị hệ thống" in page.text and 'href="/admin/accounts"' in page.text
    # the admin's menu: no clinical entries (they would answer 403)
    assert 'href="/clinic"' not in page.text and 'href="/station/checkup"' not in page.text
    client.cookies.clear()
    assert login(client, org.clinician) == "/clinic"


def test_non_admins_get_a_403_page_and_no_admin_menu(
    client: TestClient, org: Org, db: Database
) -> None:
    anonymous = client.get("/admin/accounts", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/staff/login?next=/admin/accounts")
    login(client, org.clinician)
    page = client.get("/admin")
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "chỉ dành cho quản trị viên" in page.text
    clinic = client.get("/clinic")
    assert 'href="/admin"' not in clinic.text and 'href="/clinic"' in clinic.text
    with db.connection() as conn:
        denied = conn.execute(
            "SELECT count(*) FROM audit_event WHERE action = 'admin-console' AND outcome = 'deny'"
        ).fetchone()
    assert denied and denied[0] >= 1


def test_menu_shows_only_what_each_person_may_use(db: Database, org: Org) -> None:
    hrefs = {u: [e.href for e in staff_menu(_actor(db, u))] for u in
             (org.admin, org.clinician, org.station_user)}  # fmt: skip
    assert hrefs[org.admin] == ["/admin", "/admin/units", "/admin/accounts", "/admin/keys"]
    assert "/admin" not in hrefs[org.clinician] and "/clinic" in hrefs[org.clinician]
    assert "/station/checkup" in hrefs[org.station_user]
    assert staff_menu(None) == []


def test_accounts_created_changed_disabled_enabled_and_reset(
    client: TestClient, org: Org, db: Database
) -> None:
    login(client, org.admin)
    bad = client.post("/admin/accounts", data={"username": "x y", "kind": "clinician",
                                               "unit_id": "BV-T", "phone": "12"})  # fmt: skip
    assert bad.status_code == 422
    assert 'id="e-username"' in bad.text and 'id="e-phone"' in bad.text
    auditor = client.post("/admin/accounts", data={
        "username": "adm-t.kt", "kind": "staff", "unit_id": "SYT-T", "role": "auditor"})  # fmt: skip
    assert auditor.status_code == 422 and "người vận hành" in auditor.text  # operator only
    made = client.post("/admin/accounts", follow_redirects=False, data={
        "username": "adm-t.moi", "kind": "clinician", "unit_id": "BV-T",
        "display_name": "BS. Trần Mới", "phone": "0912 000 777", "role": ["clinician"]})  # fmt: skip
    assert made.status_code == 303, made.text
    url = made.headers["location"].split("?")[0]
    page = client.get(url + "?done=created")
    assert "Chờ kích hoạt" in page.text and "BS. Trần Mới" in page.text
    found = client.get("/admin/accounts", params={"q": "trần mới"})
    assert "adm-t.moi" in found.text and "adm-t.bs" not in found.text
    # roles: a station role added; an unknown one ignored (only known boxes are read)
    saved = client.post(url, data={"display_name": "BS. Trần Mới", "phone": "0912000777",
                                   "role": ["clinician", "station"]}, follow_redirects=False)  # fmt: skip
    assert saved.status_code == 303
    with db.connection() as conn:
        acc = accounts.find_account(conn, "adm-t.moi")
    assert acc is not None and acc.roles == ("clinician", "station") and acc.phone == "0912000777"
    sent = client.post(url + "/activation", follow_redirects=False)
    assert sent.status_code == 303
    shown = client.get(sent.headers["location"])
    assert "091••••777" in shown.text
    no_reason = client.post(url + "/disable", data={"reason": ""})
    assert no_reason.status_code == 422 and 'id="e-reason"' in no_reason.text
    off = client.post(url + "/disable", data={"reason": "nghỉ việc"}, follow_redirects=False)
    assert off.status_code == 303
    assert "Đã khóa" in client.get(url).text and "nghỉ việc" in client.get(url).text
    on = client.post(url + "/enable", follow_redirects=False)
    assert on.status_code == 303
    with db.connection() as conn:
        acts = [r[0] for r in conn.execute(
            "SELECT action FROM audit_event WHERE detail->>'account' = %s AND outcome = 'allow' "
            "ORDER BY seq", (str(acc.id),)).fetchall()]  # fmt: skip
    assert acts == ["account-create", "account-update", "account-activation",
                    "account-disable", "account-enable"]  # fmt: skip


def test_an_admin_only_reaches_their_own_subtree(
    client: TestClient, org: Org, db: Database
) -> None:
    login(client, org.sub_admin)
    listed = client.get("/admin/accounts")
    assert "adm-t.tram" in listed.text and "adm-t.bs" not in listed.text
    with db.connection() as conn:
        other = accounts.find_account(conn, org.clinician)
        own = accounts.find_account(conn, org.sub_admin)
    assert other is not None and own is not None
    assert client.get(f"/admin/accounts/{other.id}").status_code == 404
    assert (
        client.post(f"/admin/accounts/{other.id}/disable", data={"reason": "thử"}).status_code
        == 404
    )
    mine = client.get(f"/admin/accounts/{own.id}")
    assert mine.status_code == 200 and "quản trị viên khác" in mine.text  # no self-change form
    assert (
        client.post(f"/admin/accounts/{own.id}/disable", data={"reason": "thử"}).status_code == 403
    )
    assert client.get("/admin/units/BV-T").status_code == 404


def test_units_created_and_edited_with_the_api_rules(
    client: TestClient, org: Org, db: Database
) -> None:
    login(client, org.admin)
    clash = client.post("/admin/units", data={"id": "PK-T", "name": "Phòng khám thử",
                                              "kind": "clinic", "parent_id": "SYT-T",
                                              "facility_code": "09901"})  # fmt: skip
    assert clash.status_code == 422 and 'id="e-facility_code"' in clash.text
    made = client.post("/admin/units", follow_redirects=False, data={
        "id": "PK-T", "name": "Phòng khám thử", "kind": "clinic", "parent_id": "TTYT-T",
        "facility_code": "09902"})  # fmt: skip
    assert made.status_code == 303, made.text
    # a unit cannot be moved under itself or a unit below it
    loop = client.post("/admin/units/TTYT-T", data={"name": "Trung tâm", "kind": "district_centre",
                                                    "parent_id": "TYT-T"})  # fmt: skip
    assert loop.status_code == 422
    renamed = client.post("/admin/units/PK-T", follow_redirects=False, data={
        "name": "Phòng khám Đa khoa thử", "kind": "polyclinic", "parent_id": "SYT-T",
        "facility_code": "09902"})  # fmt: skip
    assert renamed.status_code == 303
    with db.connection() as conn:
        row = conn.execute("SELECT name, kind, parent_id FROM unit WHERE id = 'PK-T'").fetchone()
        assert row == ("Phòng khám Đa khoa thử", "polyclinic", "SYT-T")
        # the same rules through the API's functions
        sub = _actor(db, org.sub_admin)
        with pytest.raises(AdminError) as exc:
            update_unit(conn, sub, UnitSpec("TTYT-T", "district_centre", "x", "BV-T"))
        assert exc.value.status in (403, 404)
        with pytest.raises(AdminError) as exc:
            create_unit(conn, sub, UnitSpec("QG-T", "external", "Hệ thống quốc gia", "TTYT-T"))
        assert exc.value.status == 403
        assert "BV-T" not in managed_units(conn, sub, "test")


def test_keys_rotated_by_adding_and_revoking(client: TestClient, org: Org, db: Database) -> None:
    from hssk.access import signing

    login(client, org.admin)
    _private, public = signing.generate_keypair("EdDSA")
    bad = client.post("/admin/units/BV-T/keys", data={"pem": "-----BEGIN nonsense-----" * 3})
    assert bad.status_code == 422 and 'id="e-pem"' in bad.text
    added = client.post("/admin/units/BV-T/keys", data={"pem": public.decode()},
                        follow_redirects=False)  # fmt: skip
    assert added.status_code == 303
    with db.connection() as conn:
        kids = [k for k, _a, _key in signing.unit_keys(conn, "BV-T")]
    assert len(kids) == 1
    page = client.get("/admin/keys")
    assert kids[0][:16] in page.text and "Khóa ký của nền tảng" in page.text
    revoked = client.post(f"/admin/units/BV-T/keys/{kids[0]}/revoke", follow_redirects=False)
    assert revoked.status_code == 303
    with db.connection() as conn:
        assert signing.unit_keys(conn, "BV-T") == []


def test_admin_forms_refuse_another_site(client: TestClient, org: Org) -> None:
    login(client, org.admin)
    resp = client.post("/admin/units", data={"id": "X-T", "name": "x", "kind": "clinic"},
                       headers={"Origin": "https://evil.example"})  # fmt: skip
    assert resp.status_code == 403 and "trang web" in resp.text


def test_console_in_english(client: TestClient, org: Org) -> None:
    login(client, org.admin)
    for path, words in (("/admin?lang=en", ("Administration", "Keys and certificates")),
                        ("/admin/accounts/new", ("Add an account", "Roles", "Clinical care")),
                        ("/admin/units/BV-T", ("Edit the unit", "Facility code (CSKCB)"))):  # fmt: skip
        page = client.get(path)
        assert page.status_code == 200 and '<html lang="en">' in page.text, path
        for word in words:
            assert word in page.text, (path, word)
        assert "Quản trị hệ thống" not in page.text
