"""Supervision: area scoping, figures against direct SQL, pages, exports, metrics, quality."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from hssk.access.actor import Actor
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.catalog import completeness
from hssk.db import Database
from hssk.kernel.config import load_settings
from hssk.monitor import charts, export, metrics, quality
from hssk.monitor.areas import parse
from hssk.records import store
from tests.factories.supervision import Province, load_province

API = "/api/v1/supervision"


def _h(
    unit: str | None, *roles: str, kind: str = "staff", scope: str = "user/*.read"
) -> dict[str, str]:
    actor = Actor(account_id=f"acc-{unit}-{'-'.join(roles)}", kind=kind, unit_id=unit,
                  roles=frozenset(roles), scopes=frozenset({scope}))  # fmt: skip
    return {"Authorization": f"Bearer {issue(load_settings(), actor)}"}


def _quality_cases(conn, prov: Province) -> dict[str, int]:
    first = prov.first_person
    # two living records sharing one CCCD; a CCCD whose year contradicts the birth date
    conn.execute(
        "UPDATE person SET cccd = '001090123456', birth_date = '1990-03-03', sex = 'M' "
        "WHERE id IN (%s, %s)",
        (first + 1, first + 2),
    )
    conn.execute(
        "UPDATE person SET full_name = 'Ngô Thu Hà', name_key = 'ngo thu ha', cccd = NULL, "
        "birth_date = '1985-01-01' WHERE id IN (%s, %s)",
        (first + 3, first + 4),
    )
    dead = first + 5
    conn.execute(
        "UPDATE person SET deceased_at = now() - interval '20 days' WHERE id = %s", (dead,)
    )
    store.bulk_upsert(conn, [store.NewResource(
        {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
         "subject": {"reference": f"Patient/person-{dead}"},
         "period": {"start": (datetime.now(UTC) - timedelta(days=2)).isoformat()}},
        person_id=dead, source_key=f"after-death|{dead}", source_unit=prov.facilities[1],
    )])  # fmt: skip
    child = first + 6
    conn.execute(
        "UPDATE person SET birth_date = current_date - 400, mother_id = NULL, deceased_at = NULL "
        "WHERE id = %s",
        (child,),
    )
    return {"dead": dead, "child": child}


@pytest.fixture(scope="module")
def world(db: Database) -> Iterator[tuple[TestClient, Province, dict[str, int]]]:
    from tests.conftest import truncate_all

    truncate_all(db)
    with db.connection() as conn:
        prov = load_province(conn, 160, seed=21)
        conn.execute(
            "INSERT INTO unit (id, kind, name, province_code) VALUES "
            "('SYT79', 'department', 'Sở Y tế TP Hồ Chí Minh', '79')"
        )
        cases = _quality_cases(conn, prov)
    completeness.run(db, batch=100)
    with db.connection() as conn:
        quality.run(conn)
        metrics.snapshot(conn, parse("province:01"), date.today() - timedelta(days=1))
        metrics.snapshot(conn, parse("province:01"))
    with TestClient(create_app(load_settings(), db)) as client:
        yield client, prov, cases
    truncate_all(db)


def test_department_sees_its_province_with_correct_figures(world, db: Database) -> None:
    client, _prov, _ = world
    resp = client.get(f"{API}/summary", headers=_h("SYT01", "supervisor"))
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["area"]["key"] == "province:01"
    with db.connection() as conn:
        expect = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE id IN (SELECT person_id FROM resource)),
                      count(*) FILTER (WHERE bhyt IS NOT NULL), count(*) FILTER (WHERE cccd IS NOT NULL),
                      count(DISTINCT household_id), count(*) FILTER (WHERE deceased_at IS NOT NULL)
               FROM person WHERE province_code = '01'"""
        ).fetchone()
    cov = data["coverage"]
    assert (cov["residents"], cov["with_record"], cov["with_bhyt"], cov["with_cccd"],
            cov["households"], cov["deaths"]) == expect  # fmt: skip
    assert sum(data["completeness_distribution"]) == 160
    targets = {p["metric"]: p for p in data["progress"]}
    assert targets["residents_with_record"]["goal"] == 0.9
    assert targets["facilities_sharing"]["value"] < 1  # one stopped, one never sent
    assert data["facilities"] == {"total": 15, "ok": 13, "stopped": 1, "never": 1}
    # the other province's department sees none of these persons
    other = client.get(f"{API}/summary", headers=_h("SYT79", "supervisor")).json()
    assert other["coverage"]["residents"] == 0 and other["facilities"]["total"] == 0


def test_facilities_metrics(world) -> None:
    client, prov, _ = world
    rows = client.get(f"{API}/facilities", headers=_h("SYT01", "supervisor")).json()
    by = {r["facility_code"]: r for r in rows}
    assert by[prov.facilities[0]]["status"] == "stopped"
    assert by[prov.facilities[-1]]["status"] == "never"
    busy = by[prov.facilities[1]]
    assert busy["status"] == "ok" and busy["records"] > 0 and busy["volume_per_day"] > 0
    assert 0 <= busy["delay_days"] <= 3
    assert 0 < busy["error_rate"] < 0.2
    assert len(busy["daily"]) == 14 and sum(busy["daily"]) > 0
    assert busy["missing_fields"] and busy["missing_fields"][0]["persons"] > 0


def test_station_sees_only_its_commune_and_cannot_widen(world, db: Database) -> None:
    client, prov, _ = world
    station = _h(prov.stations["00001"], "station")
    data = client.get(f"{API}/summary", headers=station).json()
    with db.connection() as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM person WHERE commune_code = '00004' OR commune_code_old = '00001'"
        ).fetchone()
    assert data["area"]["kind"] == "commune" and data["coverage"]["residents"] == n > 0
    assert client.get(f"{API}/summary?area=province:01", headers=station).status_code == 403
    assert client.get(f"{API}/summary").status_code == 401
    assert client.get(f"{API}/summary", headers=_h("SYT01", "clinician")).status_code == 403
    # a department may narrow to one of its communes, and by old district
    one = client.get(f"{API}/summary?area=commune:00004", headers=_h("SYT01", "supervisor"))
    assert one.status_code == 200 and 0 < one.json()["coverage"]["residents"] < 160
    districts = client.get(f"{API}/communes?by=district_old", headers=_h("SYT01", "supervisor"))
    assert {d["code"] for d in districts.json()} == {"001", "002"}
    assert sum(d["residents"] for d in districts.json()) == 160
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT outcome, detail->>'view' FROM audit_event WHERE resource_type = 'Supervision'"
        ).fetchall()
    assert ("deny", "summary") in rows and ("allow", "summary") in rows


def test_completeness_api_matches_table(world, db: Database) -> None:
    client, _, _ = world
    rows = client.get(f"{API}/completeness?level=province", headers=_h("SYT01", "supervisor"))
    (row,) = rows.json()
    with db.connection() as conn:
        filled, total = conn.execute(
            "SELECT sum(filled), sum(total) FROM completeness WHERE catalog = 'hanoi-73'"
        ).fetchone()
    assert (row["filled"], row["total"], row["persons"]) == (filled, total, 160)


def test_pages_vietnamese_first_with_english_and_svg(world) -> None:
    client, prov, _ = world
    h = _h("SYT01", "supervisor")
    page = client.get("/supervision", headers=h)
    assert page.status_code == 200
    html = page.text
    assert '<html lang="vi">' in html and "Tiến độ so với mục tiêu" in html
    assert "<svg" in html and 'role="img"' in html and "Ngừng gửi" in html
    assert "Phường" in html  # commune names
    en = client.get("/supervision?lang=en", headers=h).text
    assert '<html lang="en">' in en and "Progress against targets" in en
    fac = client.get("/supervision/facilities", headers=h).text
    assert prov.facilities[0] in fac and 'class="alert"' in fac
    anonymous = client.get("/supervision", follow_redirects=False)
    assert anonymous.status_code == 303  # to the staff login, back here afterwards
    assert anonymous.headers["location"] == "/staff/login?next=/supervision"


def test_exports_csv_and_xlsx(world) -> None:
    client, _, _ = world
    h = _h("SYT01", "supervisor")
    csv = client.get("/supervision/export.csv?table=communes", headers=h)
    assert csv.headers["content-type"].startswith("text/csv")
    text = csv.content.decode("utf-8")
    assert text.startswith("\ufeff") and "Dân số quản lý" in text
    assert len(text.strip().splitlines()) == 1 + 4  # header + the four 2025 wards
    xlsx = client.get("/supervision/export.xlsx?table=facilities", headers=h)
    z = zipfile.ZipFile(io.BytesIO(xlsx.content))
    sheet = etree.fromstring(z.read("xl/worksheets/sheet1.xml"))
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    assert len(sheet.findall(".//m:row", ns)) == 16
    etree.fromstring(z.read("[Content_Types].xml"))


def test_exports_speak_to_people_not_to_the_code(world) -> None:
    """No internal field keys (hc.dan_toc), no UTC instants, Vietnamese headers."""
    client, _, _ = world
    h = _h("SYT01", "supervisor")
    text = client.get("/supervision/export.csv?table=facilities", headers=h).content.decode()
    header, *rows = text.lstrip("\ufeff").splitlines()
    assert header.startswith("Mã CSKCB,Cơ sở,Trạng thái,Lần nhận gần nhất")
    assert "hc." not in text and "+00:00" not in text and "T0" not in text
    received = [r.split(",")[3] for r in rows if r.split(",")[3]]
    assert received and all(re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", v) for v in received)
    communes = client.get("/supervision/export.csv?table=communes", headers=h).content.decode()
    assert communes.lstrip("\ufeff").startswith("Mã địa bàn,Xã/phường,")
    quality_csv = client.get("/supervision/export.csv?table=quality", headers=h).content.decode()
    assert "conflicting_identifier" not in quality_csv and "Định danh mâu thuẫn" in quality_csv
    assert (
        export.to_csv(["Ngày"], [[datetime(2026, 12, 31, 17, 30, tzinfo=UTC)]])
        .decode("utf-8-sig")
        .splitlines()[1]
        == "01/01/2027 00:30"
    )  # the Vietnam date and time, never the UTC one


def test_cli_export_is_the_page_export(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from hssk.monitor.cli import app

    out = tmp_path / "co-so.csv"
    done = CliRunner().invoke(app, ["export", str(out), "--table", "facilities"])
    assert done.exit_code == 0, done.output
    text = out.read_text("utf-8-sig")
    assert text.startswith("Mã CSKCB,Cơ sở,Trạng thái,Lần nhận gần nhất")
    assert "hc." not in text and "+00:00" not in text and "facility_code" not in text
    refused = CliRunner().invoke(app, ["export", str(out), "--table", "quality"])
    assert refused.exit_code != 0  # no named lists from the command line


def test_quality_lists(world) -> None:
    client, prov, cases = world
    dept = client.get(f"{API}/quality", headers=_h("SYT01", "supervisor")).json()
    kinds = {c["kind"] for c in dept["counts"]}
    assert kinds == set(quality.KINDS)
    assert dept["items"] == [] and dept["named"] is False  # aggregates only
    commune = "00001"
    station = client.get(f"{API}/quality", headers=_h(prov.stations[commune], "station")).json()
    assert station["named"] and station["items"]
    assert all(i["commune_code"] in ("00004",) for i in station["items"])
    station_all = {(i["kind"], i["person_id"]) for i in station["items"]}
    platform = _h(None, "admin", kind="system", scope="system/*.read")
    dept_admin = client.get(f"{API}/quality", headers=platform).json()
    ids = {(i["kind"], i["person_id"]) for i in dept_admin["items"]}
    assert station_all <= ids
    assert ("visit_after_death", cases["dead"]) in ids
    assert ("child_without_guardian", cases["child"]) in ids
    assert ("conflicting_identifier", prov.first_person + 1) in ids
    assert ("suspected_duplicate", prov.first_person + 3) in ids


def test_metrics_endpoint(world) -> None:
    client, _, _ = world
    assert client.get("/metrics").status_code == 401  # the scraper only
    scraper = _h(None, kind="system", scope="system/Metrics.read")
    text = client.get("/metrics", headers=scraper).text
    assert "# TYPE hssk_outbox_oldest_pending_seconds gauge" in text
    assert "hssk_up 1.0" in text
    assert 'hssk_quality_issues{kind="suspected_duplicate"}' in text


def test_trends_and_catalog_api(world) -> None:
    client, _, _ = world
    tr = client.get(f"{API}/trends", headers=_h("SYT01", "supervisor")).json()
    assert len(tr["dates"]) == 30 and sum(tr["records"]) > 0
    assert {s["metric"] for s in tr["snapshots"]} >= {"with_record_share"}
    cats = {c["name"]: c for c in client.get("/api/v1/catalogs").json()}
    assert cats["hanoi-73"]["size"] == 73 and cats["hanoi-73"]["provisional"]
    one = client.get("/api/v1/catalogs/qd1332?lang=en").json()
    assert one["fields"][0]["label"] == "Full name"
    assert client.get("/api/v1/catalogs/nope").status_code == 404


def test_svg_and_xlsx_helpers() -> None:
    svg = charts.bar_chart([1, 2, 3], ["a", "b", "c<"], "T & t")
    etree.fromstring(svg.encode())  # well-formed, escaped
    line = charts.line_chart([("d1", 0.2), ("d2", 0.5)], "x", goal=0.9)
    assert "stroke-dasharray" in etree.tostring(etree.fromstring(line.encode())).decode()
    # numbers and words follow the page's language: 90,0% and 'Mục tiêu'; 90.0% and 'Target'
    assert "Mục tiêu 90,0%" in line and "giá trị cuối 50,0%" in line and "Target" not in line
    english = charts.line_chart([("d1", 0.2), ("d2", 0.5)], "x", goal=0.9, lang="en")
    assert "Target 90.0%" in english and "last value 50.0%" in english and "Mục tiêu" not in english
    assert "total 1,234" in charts.bar_chart([1000, 234], ["a", "b"], "n", lang="en")
    assert "tổng 1.234" in charts.bar_chart([1000, 234], ["a", "b"], "n")
    data = export.to_xlsx(["a", "b"], [["Nguyễn <&>", 1.5], [None, date(2025, 1, 2)]])
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "Nguyễn &lt;&amp;&gt;" in sheet and "<v>1.5</v>" in sheet


def test_person_completeness_needs_a_right_to_read(world) -> None:
    client, prov, _ = world
    pid = prov.first_person
    citizen = Actor(account_id="cit", kind="citizen", person_id=pid,
                    scopes=frozenset({"patient/*.read"}))  # fmt: skip
    h = {"Authorization": f"Bearer {issue(load_settings(), citizen)}"}
    body = client.get(f"/api/v1/catalogs/completeness/{pid}", headers=h).json()
    filled, total = body["hanoi-73"]["filled"], body["hanoi-73"]["total"]
    assert total == 73 and body["hanoi-73"]["text"] == f"{filled}/73"
    other = client.get(f"/api/v1/catalogs/completeness/{pid + 1}", headers=h)
    assert other.status_code == 403


def test_quality_details_show_instants_on_their_vietnam_day() -> None:
    from hssk.api.routes.monitor import _day

    # a death stored at 18:30 UTC happened at 01:30 the next morning in Vietnam
    assert _day("2026-12-06T18:30:00+00:00") == "07/12/2026"
    assert _day("2026-12-06T10:00:00Z") == "06/12/2026"
    assert _day("2026-12-06") == "06/12/2026"  # a date stays the date written
