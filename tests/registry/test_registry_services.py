"""Verification against the (simulated) population register, PDQm $match, the mpi CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class
from typer.testing import CliRunner

from hssk.db import Database
from hssk.kernel import identifiers as ids
from hssk.registry import SourceRecord, get_person, link, link_many, match, patient_resource
from hssk.registry.cli import app
from hssk.registry.search import MatchInputError
from hssk.registry.verify import (
    RegisterUnavailable,
    SimulatedRegister,
    verify_pending,
    write_register_csv,
)

REGISTER = [
    {
        "cccd": "001190000001",
        "full_name": "Nguyễn Thị Hòa",
        "birth_date": "1990-04-04",
        "sex": "F",
        "commune_code": "00004",
    },
    {
        "cccd": "001085000002",
        "full_name": "Trần Văn Bình",
        "birth_date": "1985-01-09",
        "sex": "M",
        "commune_code": "00004",
    },
]


def test_verification_outage_never_blocks_linking(clean_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    write_register_csv(path, REGISTER)
    reg = SimulatedRegister.from_csv(path, latency_ms=0)
    reg.down = True
    with clean_db.connection() as conn:
        a = link(
            conn,
            SourceRecord("xml130:01001", "1", "Nguyen Thi Hoa", "1990", "F", cccd="001190000001"),
        )
        b = link(
            conn,
            SourceRecord(
                "xml130:01001", "2", "Tran Van Binh", "1985-01-09", "M", cccd="001085000002"
            ),
        )
        c = link(
            conn,
            SourceRecord("xml130:01001", "3", "Lò Văn Páo", "1970-01-01", "M", cccd="011070000003"),
        )
        assert verify_pending(conn, reg) == {
            "verified": 0,
            "mismatch": 0,
            "not_found": 0,
            "retry": 3,
        }
        # linking still works during the outage
        again = link(
            conn,
            SourceRecord(
                "immunization", "9", "Trần Văn Bình", "1985-01-09", "M", cccd="001085000002"
            ),
        )
        assert again.person_id == b.person_id
        # nothing is due before the back-off has passed
        reg.down = False
        assert sum(verify_pending(conn, reg).values()) == 0
        conn.execute("UPDATE person SET verify_next = now() - interval '1 second'")
        assert verify_pending(conn, reg) == {
            "verified": 2,
            "mismatch": 0,
            "not_found": 1,
            "retry": 0,
        }
        hoa = get_person(conn, a.person_id)
        assert hoa is not None and hoa.verification == "verified" and hoa.cccd_verified
        assert (
            hoa.full_name == "Nguyễn Thị Hòa" and hoa.birth_date_text == "1990-04-04"
        )  # corrected
        assert get_person(conn, c.person_id).verification == "not_found"  # type: ignore[union-attr]
        n = conn.execute(
            "SELECT count(*) FROM person_verification WHERE outcome = 'error'"
        ).fetchone()
        assert n == (3,)


def test_simulated_register_quota() -> None:
    t = [0.0]
    reg = SimulatedRegister(REGISTER, latency_ms=0, quota_per_minute=2, clock=lambda: t[0])
    assert reg.lookup("001190000001", "Nguyen Thi Hoa", "1990").status == "match"
    assert reg.lookup("001190000001", "Lê Văn Tám", "1990").status == "mismatch"
    with pytest.raises(RegisterUnavailable):
        reg.lookup("001085000002", None, None)
    t[0] = 61.0
    assert reg.lookup("001099999999", None, None).status == "not_found"


def test_match_grades_and_patient_resource(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        a, b = link_many(
            conn,
            [
                SourceRecord(
                    "population",
                    "1",
                    "Nguyễn Thị Hòa",
                    "1990-04-04",
                    "F",
                    cccd="001190000001",
                    commune_code="00004",
                ),
                SourceRecord(
                    "population", "2", "Nguyễn Thị Hòa", "1971-12-01", "F", commune_code="00004"
                ),
            ],
        )
        from datetime import UTC, datetime

        from hssk.registry import Death, mark_deceased_many

        death = Death(b.person_id, datetime(2025, 1, 2, 3, 4, tzinfo=UTC), "population", "2")
        assert mark_deceased_many(conn, [death]).applied == [death]
        dead = get_person(conn, b.person_id)
        assert dead is not None and patient_resource(dead)["deceasedDateTime"].startswith(
            "2025-01-02"
        )
        person = get_person(conn, a.person_id)
        assert person is not None
        resource = patient_resource(person)
        get_fhir_model_class("Patient").model_validate(resource)  # valid FHIR R4
        assert "deceasedDateTime" not in resource
        query = {
            "resourceType": "Patient",
            "name": [{"family": "Nguyen", "given": ["Thi", "Hoa"]}],
            "birthDate": "1990-04-04",
            "gender": "female",
        }
        found = match(conn, query, 5, False)
        assert found[0][0].id == a.person_id and found[0][2] == "certain"
        assert all(p.id != b.person_id for p, _, _ in found)  # different full birth date
        by_id = {
            "resourceType": "Patient",
            "identifier": [{"system": ids.CCCD, "value": "001190000001"}],
        }
        only = match(conn, by_id, 5, True)
        assert [(p.id, g) for p, _, g in only] == [(a.person_id, "certain")]
        year_only = {
            "resourceType": "Patient",
            "name": [{"text": "Nguyễn Thị Hòa"}],
            "birthDate": "1990",
        }
        assert (
            all(g != "certain" for _, _, g in match(conn, year_only, 5, False))
            or len(match(conn, year_only, 5, True)) == 1
        )
        with pytest.raises(MatchInputError):
            match(conn, {"resourceType": "Observation"}, 5, False)
        with pytest.raises(MatchInputError):
            match(conn, {"resourceType": "Patient", "gender": "male"}, 5, False)


def test_cli_link_csv_round_trip(tmp_path: Path) -> None:
    inp, out = tmp_path / "in.csv", tmp_path / "out.csv"
    rows = [
        ["record_id", "full_name", "birth_date", "sex", "cccd", "phone", "commune_code"],
        ["r1", "Nguyễn Văn An", "1990-05-12", "M", "001090012345", "", "00004"],
        ["r2", "NGUYEN VAN AN", "1990-05-12", "M", "", "0912345678", "00004"],
        ["r3", "Nguyễn Văn An", "1990-05-12", "M", "001090012345", "+84912345678", ""],
        ["r4", "Nguyễn Văn Ân", "1958-01-01", "M", "", "", "00004"],
        ["r5", "", "", "", "", "", ""],
    ]
    with inp.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    result = CliRunner().invoke(app, ["link", str(inp), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert [g["record_id"] for g in got] == ["r1", "r2", "r3", "r4", "r5"]
    key = {g["record_id"]: g["person_key"] for g in got}
    assert key["r1"] == key["r2"] == key["r3"]
    assert len({key["r1"], key["r4"], key["r5"]}) == 3


def test_cli_link_rejects_bad_input(tmp_path: Path) -> None:
    inp = tmp_path / "in.csv"
    inp.write_text("id,full_name\n1,An\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["link", str(inp), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "record_id" in result.output
    inp.write_text("record_id\nx\nx\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["link", str(inp), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "line 2" in result.output.replace("\n", " ")


def test_find_for_clinician_search(clean_db: Database) -> None:
    from hssk.registry import find

    with clean_db.connection() as conn:
        a, b, c = link_many(
            conn,
            [
                SourceRecord(
                    "population", "1", "Lê Thị Thu Hà", "1988-08-08", "F", cccd="001188000111"
                ),
                SourceRecord("population", "2", "Lê Thị Hà", "1990-01-01", "F"),
                SourceRecord(
                    "population", "3", "Phan Văn Tài", "1970-01-01", "M", bhyt="HT4010000000777"
                ),
            ],
        )
        by_name = find(conn, name="le thi thu ha")
        assert (
            by_name[0].person.id == a.person_id
        )  # a name alone is weak evidence: ranked, low score
        assert by_name[0].evidence["name"]["level"] == "exact_folded"
        both = {x.person.id for x in find(conn, name="Lê Hà")}
        assert {a.person_id, b.person_id} <= both  # family + given, middle names missing
        assert [x.person.id for x in find(conn, cccd="0011 8800 0111")] == [a.person_id]
        assert [x.person.id for x in find(conn, bhxh="0000000777")] == [c.person_id]
        assert [x.grade for x in find(conn, bhyt="HT4010000000777")] == ["certain"]
        assert find(conn, name="Không Có Ai") == []


def test_find_by_name_and_birth_year(clean_db: Database) -> None:
    """Namesakes of the year asked and those without a birth date; never another year's."""
    from hssk.registry import find

    records = [("Lê Văn Nam", "1980-05-01"), ("Lê Nam", "1980-11-30"), ("Lê Văn Nam", "1981-01-01"),
               ("Lê Văn Nam", "1979-12-31"), ("Lê Văn Nam", None)]  # fmt: skip
    with clean_db.connection() as conn:
        recs = [SourceRecord("population", str(i), name, born, "M", cccd=f"00108000{i:04d}")
                for i, (name, born) in enumerate(records)]  # fmt: skip
        linked = link_many(conn, recs)
        ids = [r.person_id for r in linked]
        assert len(set(ids)) == len(records)  # different CCCDs: five persons
        found = {x.person.id for x in find(conn, name="Lê Văn Nam", birth_date="1980")}
        assert found == {ids[0], ids[1], ids[4]}


def test_cli_review_merge_unmerge_show(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        a, b = link_many(
            conn,
            [
                SourceRecord(
                    "population", "1", "Đinh Văn Sáu", "1950-06-06", "M", commune_code="00004"
                ),
                SourceRecord(
                    "population", "2", "Đinh Văn Sáu", "1950-07-07", "M", commune_code="00004"
                ),
            ],
        )
        maybe = link(
            conn, SourceRecord("station", "9", "Dinh Van Sau", "1950", "M", commune_code="00004")
        )
    runner = CliRunner()
    listing = runner.invoke(app, ["review"])
    assert listing.exit_code == 0 and str(maybe.person_id) in listing.output
    with clean_db.connection() as conn:
        rid = conn.execute("SELECT min(id) FROM match_review").fetchone()[0]  # type: ignore[index]
    assert runner.invoke(app, ["reject", str(rid), "--actor", "bs.lan"]).exit_code == 0
    assert runner.invoke(app, ["reject", str(rid)]).exit_code == 1  # already decided
    merged = runner.invoke(
        app, ["merge", str(a.person_id), str(maybe.person_id), "--reason", "cùng người"]
    )
    assert merged.exit_code == 0, merged.output
    shown = runner.invoke(app, ["show", str(maybe.person_id)])
    assert (
        shown.exit_code == 0
        and f'"Patient/{maybe.person_id}"' in shown.output
        and '"replaces"' in shown.output
    )
    with clean_db.connection() as conn:
        mid = conn.execute("SELECT max(id) FROM person_merge").fetchone()[0]  # type: ignore[index]
    assert runner.invoke(app, ["unmerge", str(mid)]).exit_code == 0
    assert runner.invoke(app, ["unmerge", str(mid)]).exit_code == 1
    assert runner.invoke(app, ["show", "999999"]).exit_code == 1
    assert b.person_id != a.person_id
