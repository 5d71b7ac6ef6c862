"""The hard cases of Vietnamese registers: twins, namesakes, father and son, newborns, moves."""

from __future__ import annotations

from hssk.db import Database
from hssk.registry import SourceRecord, get_person, link, link_many


def test_twins_stay_two_persons(clean_db: Database) -> None:
    common = {"birth_date": "2012-04-05", "commune_code": "00004", "phone": "0912345678"}
    with clean_db.connection() as conn:
        a, b, a2, b2 = link_many(
            conn,
            [
                SourceRecord("population", "1", "Nguyễn Minh An", sex="M", **common),
                SourceRecord("population", "2", "Nguyễn Minh Anh", sex="F", **common),
                SourceRecord("immunization", "7", "NGUYEN MINH AN", sex="M", **common),
                SourceRecord("immunization", "8", "Nguyen Minh Anh", sex="F", **common),
            ],
        )
    assert a.person_id != b.person_id
    assert a2.person_id == a.person_id and b2.person_id == b.person_id


def test_namesakes_same_commune_and_year(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        out = link_many(
            conn,
            [
                SourceRecord(
                    "population", "1", "Trần Văn Hùng", "1980-02-11", "M", commune_code="00004"
                ),
                SourceRecord(
                    "population", "2", "Trần Văn Hùng", "1980-08-27", "M", commune_code="00004"
                ),
                SourceRecord(
                    "xml130:01001", "a", "Tran Van Hung", "1980-08-27", "M", commune_code="00004"
                ),
            ],
        )
    assert out[0].person_id != out[1].person_id
    assert out[2].person_id == out[1].person_id


def test_father_and_son_with_the_same_name(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        father = link(
            conn,
            SourceRecord(
                "population",
                "f",
                "Lê Văn Nam",
                "1960-03-03",
                "M",
                commune_code="00004",
                phone="0988111222",
            ),
        )
        son = link(
            conn,
            SourceRecord(
                "population",
                "s",
                "Lê Văn Nam",
                "1988-07-07",
                "M",
                commune_code="00004",
                phone="0988111222",
            ),
        )
        # the father's record with only a birth year, sharing the household phone
        f2 = link(
            conn,
            SourceRecord(
                "station", "x", "Le Van Nam", "1960", "M", commune_code="00004", phone="0988111222"
            ),
        )
    assert father.person_id != son.person_id
    assert f2.person_id == father.person_id


def test_newborn_with_temporary_card_linked_to_mother(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        mother = link(
            conn,
            SourceRecord("population", "m", "Phạm Thị Lan", "1995-01-01", "F", cccd="001195000123"),
        )
        baby = SourceRecord(
            "xml130:01001", "bn1", "Con bà Phạm Thị Lan", "2025-03-01", "M",
            temp_card="TE1010123456789", mother_person_id=mother.person_id,
        )  # fmt: skip
        twin = SourceRecord(
            "xml130:01001", "bn2", "Con bà Phạm Thị Lan", "2025-03-01", "F",
            temp_card="TE1010123456790", mother_person_id=mother.person_id,
        )  # fmt: skip
        b1, b2 = link_many(conn, [baby, twin])
        # later: the child's temporary card comes back with the given name
        named = link(
            conn,
            SourceRecord(
                "immunization",
                "v",
                "Phạm Minh Khôi",
                "2025-03-01",
                "M",
                temp_card="TE1010123456789",
            ),
        )
        person = get_person(conn, b1.person_id)
    assert len({mother.person_id, b1.person_id, b2.person_id}) == 3
    assert named.person_id == b1.person_id and named.rule == "temp_card"
    assert person is not None and person.mother_id == mother.person_id


def test_moved_person_and_merged_ward(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        # old code 00001 (Phúc Xá, 2024) is new ward 00097 (Hồng Hà, 2025)
        a = link(
            conn,
            SourceRecord("population", "1", "Đỗ Thị Mai", "1990-10-10", "F", commune_code="00001"),
        )
        b = link(
            conn,
            SourceRecord("insurance", "2", "Do Thi Mai", "1990-10-10", "F", commune_code="00097"),
        )
        # she moved to another commune and another province's record has her with a phone
        c = link(
            conn,
            SourceRecord(
                "xml130:79001", "3", "Đỗ Thị Mai", "1990-10-10", "F", commune_code="26734"
            ),
        )
        person = get_person(conn, a.person_id)
    assert b.person_id == a.person_id
    assert person is not None and (person.commune_code, person.commune_code_old) == (
        "00097",
        "00001",
    )
    assert c.person_id == a.person_id or c.review


def test_invalid_identifier_is_weaker_evidence(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        a = link(
            conn,
            SourceRecord("population", "1", "Bùi Văn Tư", "1970-05-05", "M", cccd="001070555555"),
        )
        # same number, but the record's birth year contradicts it: no deterministic link,
        # yet the shared number still counts as evidence with the rest
        b = link(
            conn,
            SourceRecord("xml130:01001", "2", "Bùi Văn Tư", "1971-05-05", "M", cccd="001070555555"),
        )
        # a parent's CCCD on a child's record never links the child to the parent
        c = link(
            conn,
            SourceRecord(
                "xml130:01001", "3", "Bùi Minh Khang", "2015-01-01", "M", cccd="001070555555"
            ),
        )
        stored = conn.execute(
            "SELECT demographics FROM person_source WHERE source_record_id = '2'"
        ).fetchone()
    assert b.rule != "cccd" and b.person_id == a.person_id
    assert c.person_id != a.person_id
    assert stored is not None and any("cccd" in p for p in stored[0]["_problems"])


def test_son_with_fathers_name_and_phone_and_a_year_that_is_a_digit_swap(
    clean_db: Database,
) -> None:
    with clean_db.connection() as conn:
        father = link(
            conn,
            SourceRecord(
                "population", "f", "Nguyễn Văn Niệm", "1959-12-07", "M", phone="0330969164"
            ),
        )
        son = link(
            conn,
            SourceRecord("xml130:01001", "s", "Nguyen Van Niem", "1995", "M", phone="0330969164"),
        )
    assert son.person_id != father.person_id


def test_name_order_variants_link(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        a, b, c = link_many(
            conn,
            [
                SourceRecord(
                    "population", "1", "Nguyễn Văn An", "1990-01-02", "M", commune_code="00004"
                ),
                SourceRecord(
                    "xml130:01001", "2", "Văn An Nguyễn", "1990-01-02", "M", commune_code="00004"
                ),
                SourceRecord("station", "3", "Nguyễn An", "1990-01-02", "M", commune_code="00004"),
            ],
        )
    assert a.person_id == b.person_id == c.person_id
