"""Station and clinician forms save only once the person is confirmed, say whose record was
saved, keep what was typed when a check fails, and write nothing for a deceased person; the
clinician view names codes in Vietnamese and scores a search as $match does."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx

from hssk.access import accounts as acc
from hssk.access.tokens import issue
from hssk.http.gate import COOKIE, SESSION_TTL
from hssk.kernel import identifiers as ids
from hssk.kernel.codes import LOINC
from hssk.kernel.config import load_settings
from hssk.records import save
from hssk.registry import match


def _cookie(server, username: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with server.db.connection() as conn:
        account = acc.find_account(conn, username)
    assert account is not None
    token = issue(load_settings(), account.actor(), ttl=SESSION_TTL)
    return {"Cookie": f"{COOKIE}={token}"}


def _count(server, sql: str, *args: object) -> int:  # type: ignore[no-untyped-def]
    with server.db.connection() as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


def test_station_checkup_needs_the_person_confirmed(server) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    staff = _cookie(server, f.station_user)
    typed = {"cccd": f.mother_cccd, "kind": "ksk-dinh-ky", "date": "01/01/1890", "weight": "58"}
    encounters = "SELECT count(*) FROM resource WHERE person_id = %s AND type = 'Encounter'"
    before = _count(server, encounters, f.mother)
    r = httpx.post(f"{server.url}/station/checkup", data=typed, headers=staff)
    assert r.status_code == 422 and "trước ngày sinh" in r.text
    assert 'value="58"' in r.text  # what was typed is kept
    r = httpx.post(f"{server.url}/station/checkup", data={**typed, "date": "02/01/2026"},
                   headers=staff)  # fmt: skip
    assert r.status_code == 200 and 'data-testid="confirm-save"' in r.text
    assert "Nguyễn Thị Hòa" in r.text and "Sinh năm 1990" in r.text
    assert f.mother_cccd not in re.sub(r'value="[^"]*"', "", r.text)  # masked on the page
    assert _count(server, encounters, f.mother) == before  # nothing saved yet
    r = httpx.post(f"{server.url}/station/checkup", headers=staff,
                   data={**typed, "date": "02/01/2026", "confirm": str(f.mother)})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/station/checkup?saved={f.mother}"
    assert _count(server, encounters, f.mother) == before + 1
    done = httpx.get(f"{server.url}{r.headers['location']}", headers=staff)
    assert "Đã lưu phiếu khám của Nguyễn Thị Hòa (sinh năm 1990, CCCD 001" in done.text


def test_clinician_writes_nothing_for_a_deceased_person(server) -> None:  # type: ignore[no-untyped-def]
    f = server.family
    staff = _cookie(server, f.clinician)
    with server.db.connection() as conn:  # the outsider died (registry), the clinician has a basis
        conn.execute("UPDATE person SET deceased_at = %s WHERE id = %s",
                     (datetime(2026, 3, 1, tzinfo=UTC), f.outsider))  # fmt: skip
    try:
        httpx.post(f"{server.url}/clinic/p/{f.outsider}/basis", headers=staff,
                   data={"basis": "emergency", "reason": "Bệnh nhân bất tỉnh cần tiền sử"})  # fmt: skip
        r = httpx.post(f"{server.url}/clinic/p/{f.outsider}/appointment", headers=staff,
                       data={"date": "15/12/2099", "reason": "Tái khám",
                             "confirm": str(f.outsider)})  # fmt: skip
        assert r.status_code == 422 and "đã được ghi nhận tử vong ngày 01/03/2026" in r.text
    finally:
        with server.db.connection() as conn:
            conn.execute("UPDATE person SET deceased_at = NULL WHERE id = %s", (f.outsider,))


def test_clinician_view_names_codes_in_vietnamese(server) -> None:  # type: ignore[no-untyped-def]
    """LOINC tests and facility codes by their Vietnamese names, the code shown small."""
    f = server.family
    staff = _cookie(server, f.clinician)
    lab = {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "15074-8",
                             "display": "Glucose [Moles/volume] in Blood"}]},
        "effectiveDateTime": "2026-10-02", "valueQuantity": {"value": 7.4, "unit": "mmol/L"},
        "performer": [{"identifier": {"system": ids.FACILITY, "value": "01296"}}],
    }  # fmt: skip
    with server.db.connection() as conn:
        conn.execute("INSERT INTO unit (id, kind, name, facility_code) VALUES ('H01296', "
                     "'hospital', 'Bệnh viện Đa khoa Đức Giang', '01296') ON CONFLICT DO NOTHING")  # fmt: skip
        save(conn, lab, person_id=f.outsider, source_unit="H01296")
    httpx.post(f"{server.url}/clinic/p/{f.outsider}/basis", headers=staff,
               data={"basis": "emergency", "reason": "Bệnh nhân bất tỉnh cần tiền sử"})  # fmt: skip
    page = httpx.get(f"{server.url}/clinic/p/{f.outsider}", headers=staff).text
    row = next(r for r in page.split("<tr") if "15074-8" in r)
    assert "Đường huyết" in row and '<small class="code">LOINC 15074-8</small>' in row
    assert "Glucose [Moles" not in row and "7,4 mmol/L" in row  # the decimal comma, as in the book
    assert "Bệnh viện Đa khoa Đức Giang" in row and '<small class="code">01296</small>' in row


def test_name_search_scores_as_match_does(server) -> None:  # type: ignore[no-untyped-def]
    """The clinician's search and $match score a pair with the same function, labelled in
    Vietnamese; a name alone says it is not enough."""
    f = server.family
    staff = _cookie(server, f.clinician)
    page = httpx.get(f"{server.url}/clinic", headers=staff,
                     params={"name": "Nguyễn Thị Hòa", "birth": "12/04/1990"}).text  # fmt: skip
    shown = int(re.search(r'class="score">(\d+)%', page).group(1))  # type: ignore[union-attr]
    patient = {"resourceType": "Patient", "name": [{"text": "Nguyễn Thị Hòa"}],
               "birthDate": "1990-04-12"}  # fmt: skip
    with server.db.connection() as conn:
        scored = {p.id: s for p, s, _ in match(conn, patient)}
    assert shown == round(scored[f.mother] * 100)
    assert "chắc chắn đúng người" in page and "certain<" not in page
    alone = httpx.get(f"{server.url}/clinic", headers=staff, params={"name": "Nguyễn Thị Hòa"})
    assert "Chỉ có họ tên thì chưa đủ" in alone.text and ">certainly-not<" not in alone.text
    assert "chưa đủ căn cứ" in alone.text
