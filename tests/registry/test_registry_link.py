"""Linking: deterministic identifiers, probabilistic, review queue, batch consistency."""

from __future__ import annotations

from hssk.db import Database
from hssk.registry import SourceRecord, get_person, link, link_many, patient_resource, resolve


def test_same_cccd_links_to_one_person(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        a = link(
            conn,
            SourceRecord(
                "population", "p1", "Nguyễn Văn An", "1990-05-12", "M", cccd="001090012345"
            ),
        )
        b = link(
            conn,
            SourceRecord(
                "insurance",
                "i1",
                "NGUYEN VAN AN",
                "1990-05-12",
                "M",
                cccd="001090012345",
                bhyt="DN4010123456789",
            ),
        )
        assert a.created and a.rule == "new"
        assert not b.created and b.person_id == a.person_id and b.rule == "cccd"
        again = link(conn, SourceRecord("population", "p1", "Nguyễn Văn An", "1990-05-12", "M"))
        assert again.person_id == a.person_id and again.rule == "source"
        person = get_person(conn, a.person_id)
        assert (
            person is not None and person.bhyt == "DN4010123456789" and person.bhxh == "0123456789"
        )
        assert resolve(conn, a.person_id) == a.person_id
        res = patient_resource(person)
        assert res["birthDate"] == "1990-05-12" and res["gender"] == "male"
        assert {i["system"].rsplit("/", 1)[1] for i in res["identifier"]} >= {
            "cccd",
            "bhyt",
            "bhxh",
        }


def test_batch_links_within_itself(clean_db: Database) -> None:
    recs = [
        SourceRecord(
            "population",
            "1",
            "Trần Thị Hòa",
            "1985-03-04",
            "F",
            cccd="001185001111",
            commune_code="00004",
        ),
        SourceRecord("immunization", "9", "Tran Thi Hoa", "1985-03-04", "F", commune_code="00004"),
        SourceRecord("immunization", "10", "Trần Thị Hoà", "1985-04-03", "F", commune_code="00004"),
        SourceRecord(
            "population",
            "2",
            "Trần Văn Hòa",
            "1960-03-04",
            "M",
            cccd="001060001112",
            commune_code="00004",
        ),
    ]
    with clean_db.connection() as conn:
        out = link_many(conn, recs)
    assert out[0].person_id == out[1].person_id == out[2].person_id
    assert out[1].rule == "probabilistic" and out[2].rule == "probabilistic"
    assert out[3].person_id != out[0].person_id


def test_linked_records_fill_what_the_golden_record_lacks(clean_db: Database) -> None:
    """A later record adds missing values and refines a year-only birth date of the same
    year; identity data (phone, identifiers, address) only from a register, a clinical
    record's stays in person_source; it never overwrites a value the person has; a record
    adding nothing leaves the row untouched (no new tuple)."""
    cccd = "001090012399"
    with clean_db.connection() as conn:
        a = link(conn, SourceRecord("population", "p9", "Trần Thị Hoa", "1990", "F", cccd=cccd))
        b = link(conn, SourceRecord("xml130:01001", "bn9", "Trần Thị Hoa", "1990-07-04", "F",
                                    cccd=cccd, phone="0912345678"))  # fmt: skip
        assert b.person_id == a.person_id
        p = get_person(conn, a.person_id)
        assert p is not None and p.phone is None
        assert (str(p.birth_date), p.birth_precision) == ("1990-07-04", "D")
        link(conn, SourceRecord("insurance", "i9", "Trần Thị Hoa", "1990", "F", cccd=cccd,
                                phone="0912345678"))  # fmt: skip
        p = get_person(conn, a.person_id)
        assert p is not None and p.phone == "0912345678" and not p.phone_verified
        c = link(conn, SourceRecord("xml130:01002", "bn10", "Trần Thị Hoa", "1991-01-01", "F",
                                    cccd=cccd, phone="0987654321"))  # fmt: skip
        assert c.person_id == a.person_id
        p = get_person(conn, a.person_id)
        assert p is not None and p.phone == "0912345678" and str(p.birth_date) == "1990-07-04"
        row = "SELECT ctid::text FROM person WHERE id = %s"  # a new tuple moves it
        before = conn.execute(row, (a.person_id,)).fetchone()
        link(conn, SourceRecord("xml130:01003", "bn11", "Trần Thị Hoa", "1990-07-04", "F",
                                cccd=cccd, phone="0912345678"))  # fmt: skip
        assert conn.execute(row, (a.person_id,)).fetchone() == before


def test_single_record_link_leaves_the_callers_plan_setting_and_spends_no_id(
    clean_db: Database,
) -> None:
    """A record at a time runs with generic plans inside link and restores the caller's
    setting; a record that links to a known person reserves no new person id."""
    with clean_db.connection() as conn:
        conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        first = link(
            conn,
            SourceRecord(
                "population", "p1", "Trần Thị Mai", "1985-02-03", "F", cccd="001185012345"
            ),
        )
        assert conn.execute("SHOW plan_cache_mode").fetchone() == ("force_custom_plan",)
        seq = "SELECT last_value FROM person_id_seq"
        before = conn.execute(seq).fetchone()
        again = link(
            conn,
            SourceRecord("clinic", "c1", "TRAN THI MAI", "1985-02-03", "F", cccd="001185012345"),
        )
        assert again.person_id == first.person_id and not again.created
        assert conn.execute(seq).fetchone() == before
