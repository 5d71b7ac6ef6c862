"""Account search in the administration console: diacritics and case aside, word prefixes,
through the folded key's index; a renamed account is found under its new name."""

from __future__ import annotations

import pytest

from hssk.access import accounts
from hssk.access.actor import Actor
from hssk.access.admin import fold_pending, list_accounts, search_key, update_account
from hssk.db import Database

NAMES = {
    "tk.an": "Nguyễn Văn An",
    "tk.anh": "Nguyễn Thị Ánh",
    "tk.dung": "Đặng Thị Dung",
    "tk.duong": "Dương Đức Đạt",
    "tk.hoa": "Trần Thị Hoà",
    "tk.van": "Lê Văn",
}


@pytest.fixture
def admin(clean_db: Database) -> Actor:
    with clean_db.connection() as conn:
        accounts.create_unit(conn, "SYT-S", "department", "Sở Y tế tìm kiếm")
        accounts.create_unit(conn, "BV-S", "hospital", "Bệnh viện tìm kiếm", parent_id="SYT-S",
                             facility_code="09977")  # fmt: skip
        acc = accounts.create_account(conn, "tk.admin", "staff", unit_id="SYT-S",
                                      roles=("admin",), display_name="Quản trị")  # fmt: skip
        for username, name in NAMES.items():
            accounts.create_account(conn, username, "clinician", unit_id="BV-S",
                                    roles=("clinician",), display_name=name,
                                    phone=f"0912345{len(username):03d}")  # fmt: skip
        return acc.actor()


def _found(db: Database, admin: Actor, q: str) -> set[str]:
    with db.connection() as conn:
        return {a.username for a in list_accounts(conn, admin, search=q)}


def test_the_key_folds_as_the_project_folds() -> None:
    assert search_key("tk.duong", "Dương Đức Đạt") == "tk duong duong duc dat"
    assert search_key(None, "  ĐẶNG   thị  ") == "dang thi"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("nguyen van an", {"tk.an"}),
        ("Nguyễn Văn An", {"tk.an"}),
        ("NGUYỄN VĂN AN", {"tk.an"}),
        ("nguyễn", {"tk.an", "tk.anh"}),
        ("an nguyen", {"tk.an", "tk.anh"}),  # any order; "an" starts "anh" too
        ("ánh", {"tk.anh"}),
        ("dang thi", {"tk.dung"}),
        ("Đặng", {"tk.dung"}),
        ("đ", {"tk.dung", "tk.duong"}),  # đ folds to d: every word starting with d or đ
        ("dat duc", {"tk.duong"}),
        ("hoa", {"tk.hoa"}),
        ("hoà", {"tk.hoa"}),
        ("tk.dun", {"tk.dung"}),  # part of a username
        ("van", {"tk.an", "tk.van"}),
        ("thi x", set()),
        ("0912 345 005", {"tk.an"}),  # a phone's digits
        ("345008", {"tk.duong"}),
    ],
)
def test_search_ignores_diacritics_and_case(
    clean_db: Database, admin: Actor, typed: str, expected: set[str]
) -> None:
    assert _found(clean_db, admin, typed) == expected


def test_a_renamed_account_is_found_under_its_new_name_only(
    clean_db: Database, admin: Actor
) -> None:
    with clean_db.connection() as conn:  # a citizen's account has no unit: never listed
        accounts.create_account(conn, "cd.hoa", "citizen", display_name="Trần Thị Hoà")
    assert _found(clean_db, admin, "hoa") == {"tk.hoa"}  # every key of a unit's account filled
    with clean_db.connection() as conn:
        assert fold_pending(conn) == 0
        row = conn.execute("SELECT search_key FROM account WHERE username = 'cd.hoa'").fetchone()
        assert row is not None and row[0] is None
        hoa = accounts.find_account(conn, "tk.hoa")
        assert hoa is not None
        update_account(conn, admin, hoa.id, {"display_name": "Đoàn Thị Hoà Bình"})
        update_account(conn, admin, hoa.id, {"phone": "0987000111"})  # the key stays
        row = conn.execute("SELECT search_key FROM account WHERE id = %s", (hoa.id,)).fetchone()
        assert row is not None and row[0] is None  # cleared by the rename
    assert _found(clean_db, admin, "doan binh") == {"tk.hoa"}
    assert _found(clean_db, admin, "tran thi") == set()


def test_the_search_uses_the_prefix_index(clean_db: Database, admin: Actor) -> None:
    """The words can be looked up in the index (the planner picks it once the table is large
    enough that reading every row costs more; at 4,000 a scan of the stored arrays is cheap)."""
    with clean_db.connection() as conn:
        conn.execute(
            """INSERT INTO account (username, kind, display_name, unit_id)
               SELECT 'tk.nv' || g, 'clinician', 'Nhân Viên ' || g, 'BV-S'
               FROM generate_series(1, 4000) g"""
        )
        assert fold_pending(conn) == 4000 + len(NAMES) + 1  # none searched yet
        conn.execute("ANALYZE account")
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT id FROM account WHERE search_prefixes @> %s", (["nguyen", "van"],)
        ).fetchall()
    text = "\n".join(r[0] for r in plan)
    assert "Bitmap Index Scan on account_search_prefixes" in text, text
    assert _found(clean_db, admin, "nhan vien 3999") == {"tk.nv3999"}
