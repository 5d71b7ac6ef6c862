"""The partner book API over HTTP: versioned shape, field sets per partner, access rules, audit."""

from __future__ import annotations

import time

import httpx
import pytest

from hssk.access import Actor
from hssk.access import accounts as acc
from hssk.access.tokens import issue
from hssk.kernel.config import load_settings
from hssk.web.models import HealthBook
from hssk.web.partners import sections_for


def _token(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue(load_settings(), actor)}"}


@pytest.fixture(scope="module")
def citizen(server) -> Actor:  # type: ignore[no-untyped-def]
    with server.db.connection() as conn:
        account = acc.find_account(conn, f"citizen.{server.family.mother}")
    assert account is not None
    return account.actor()


@pytest.fixture(scope="module")
def partner(server) -> Actor:  # type: ignore[no-untyped-def]
    with server.db.connection() as conn:
        acc.create_unit(conn, "CITYAPP", "external", "Ứng dụng công dân thành phố")
    return Actor("city-app-client", "system", unit_id="CITYAPP",
                 scopes=frozenset({"system/*.read"}), client="city-app")  # fmt: skip


def test_my_book_in_the_documented_shape(server, citizen) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(f"{server.url}/api/v1/me/book?v=1", headers=_token(citizen))
    assert r.status_code == 200
    book = HealthBook.model_validate(r.json())
    assert book.version == "1" and book.person_id == server.family.mother
    assert book.admin is not None and book.admin.guardian_of == [server.family.child]
    assert book.labs and any(x.flag == "H" for x in book.labs)
    assert book.appointments and book.appointments[0].upcoming


def test_versions_and_credentials(server, citizen) -> None:  # type: ignore[no-untyped-def]
    assert httpx.get(f"{server.url}/api/v1/me/book").status_code == 401
    r = httpx.get(f"{server.url}/api/v1/me/book?v=2", headers=_token(citizen))
    assert r.status_code == 400 and "v=1" in r.json()["detail"]


def test_child_yes_stranger_no(server, citizen) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    ok = httpx.get(f"{server.url}/api/v1/book/{f.child}", headers=_token(citizen))
    assert ok.status_code == 200 and ok.json()["schedule"]
    no = httpx.get(f"{server.url}/api/v1/book/{f.outsider}", headers=_token(citizen))
    assert no.status_code == 403
    # the refused read is in the audit trail (written by the group commit after the response)
    deadline, row = time.monotonic() + 10, None
    while row is None and time.monotonic() < deadline:
        with server.db.connection() as conn:
            row = conn.execute(
                "SELECT outcome FROM audit_event WHERE person_id = %s AND actor = %s "
                "ORDER BY seq DESC LIMIT 1",
                (f.outsider, citizen.account_id),
            ).fetchone()
        time.sleep(0.05)
    assert row == ("deny",)


def test_partner_gets_its_field_set_only(server, partner) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(f"{server.url}/api/v1/book/{server.family.mother}", headers=_token(partner))
    assert r.status_code == 200
    body = r.json()
    assert sorted(body["sections"]) == sorted(sections_for("city-app"))
    assert body["labs"] is None and body["visits"] is None and body["self_reported"] is None
    assert body["appointments"] and body["referrals"]


def test_openapi_documents_the_book(server) -> None:  # type: ignore[no-untyped-def]
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/api/v1/book/{person_id}" in spec["paths"]
    assert "HealthBook" in spec["components"]["schemas"]


def test_partner_catalog_fields(server, partner) -> None:  # type: ignore[no-untyped-def]
    url = f"{server.url}/api/v1/book/{server.family.mother}/fields"
    r = httpx.get(url, params={"catalog": "qd1332"}, headers=_token(partner))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["catalog"] == "qd1332" and body["fields"]
    assert any(v["values"] for v in body["fields"].values())  # the record fills some fields
    other = httpx.get(url, params={"catalog": "hanoi-73"}, headers=_token(partner))
    assert other.status_code == 403 and "field set" in other.json()["detail"]


def test_disabled_account_is_refused(server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    monkeypatch.setattr(acc, "STATUS_TTL", 0.0)  # the server (same process) asks at once
    with server.db.connection() as conn:
        account = acc.find_account(conn, "citizen.web-api-disabled") or acc.create_account(
            conn, "citizen.web-api-disabled", "citizen", person_id=f.outsider
        )
        acc.set_active(conn, int(account.id), False, reason="test")
    headers = _token(account.actor())
    assert httpx.get(f"{server.url}/api/v1/me/book?v=1", headers=headers).status_code == 401
    assert httpx.get(f"{server.url}/api/v1/book/{f.outsider}", headers=headers).status_code == 401
    page = httpx.get(f"{server.url}/book", headers=headers)
    assert page.status_code == 303 and page.headers["location"].startswith("/book/login")
    with server.db.connection() as conn:
        acc.set_active(conn, int(account.id), True)
    # enabled again (and the process's status cache says so: account ids are reused by the
    # next test module's emptied database)
    assert httpx.get(f"{server.url}/api/v1/me/book?v=1", headers=headers).status_code == 200
