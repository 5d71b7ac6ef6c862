"""Account search in the administration console: diacritics and case aside, word prefixes,
through the folded key's index, written with the name (a search only reads); a renamed account
is found under its new name; the migration's one-time fold in SQL folds as Python does."""

from __future__ import annotations

import io

import pytest

from hssk.access import accounts
from hssk.access.accounts import search_key
from hssk.access.actor import Actor
from hssk.access.admin import list_accounts, update_account
from hssk.db import Database
from hssk.db.migrate import discover

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


def _keys(db: Database) -> dict[str, tuple[int, str | None, list[str] | None]]:
    """Every account's row version (xmin), search key and prefixes, by username."""
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT username, xmin::text::bigint, search_key, search_prefixes FROM account"
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_a_search_writes_nothing(clean_db: Database, admin: Actor) -> None:
    before = _keys(clean_db)
    assert before["tk.an"][1] == "tk an nguyen van an"  # written by create_account
    with clean_db.connection() as conn:
        conn.execute("SET TRANSACTION READ ONLY")  # any UPDATE would fail here
        assert {a.username for a in list_accounts(conn, admin, search="nguyen")} == {
            "tk.an", "tk.anh"
        }  # fmt: skip
    assert _keys(clean_db) == before  # no row got a new version


def test_a_renamed_account_is_found_under_its_new_name_only(
    clean_db: Database, admin: Actor
) -> None:
    with clean_db.connection() as conn:  # a citizen's account has no unit: never listed
        accounts.create_account(conn, "cd.hoa", "citizen", display_name="Trần Thị Hoà")
    assert _found(clean_db, admin, "hoa") == {"tk.hoa"}
    with clean_db.connection() as conn:
        hoa = accounts.find_account(conn, "tk.hoa")
        assert hoa is not None
        update_account(conn, admin, hoa.id, {"display_name": "Đoàn Thị Hoà Bình"})
    assert _keys(clean_db)["tk.hoa"][1] == "tk hoa doan thi hoa binh"  # written by the rename
    phone_before = _keys(clean_db)["tk.hoa"]
    with clean_db.connection() as conn:
        update_account(conn, admin, hoa.id, {"phone": "0987000111"})  # the key stays
    assert _keys(clean_db)["tk.hoa"][1:] == phone_before[1:]
    assert _found(clean_db, admin, "doan binh") == {"tk.hoa"}
    assert _found(clean_db, admin, "Đoàn") == {"tk.hoa"}
    assert _found(clean_db, admin, "tran thi") == set()


def test_imported_accounts_carry_their_key(clean_db: Database, admin: Actor) -> None:
    csv = "username,kind,display_name,unit_id,roles\ntk.ngoc,clinician,Võ Thị Ngọc,BV-S,\n"
    with clean_db.connection() as conn:
        assert accounts.import_accounts(conn, io.StringIO(csv)).created == 1
    assert _keys(clean_db)["tk.ngoc"][1] == "tk ngoc vo thi ngoc"
    assert _found(clean_db, admin, "vo ngoc") == {"tk.ngoc"}


ODD_NAMES = [
    "Nguyễn Văn An", "ĐẶNG  Thị--Dung", "Ngô Bảo Châu", "O'Neil Trần", "  Lý  ", "Hoà Hòa",
    "Phạm Thị Thu Thủy (cũ)", "Ŭnçé Ǆemal", "ﬁne Café", "日本 Tên", "K-12 KelvinK", "",
]  # fmt: skip


def test_the_migration_folds_the_accounts_it_finds_as_python_does(
    clean_db: Database, admin: Actor
) -> None:
    """Accounts left without a key before 0407 (created and never searched) get the key
    ``search_key`` would have written, prefixes included."""
    with clean_db.connection() as conn:
        for n, name in enumerate(ODD_NAMES):
            accounts.create_account(conn, f"tk.odd{n}", "clinician", unit_id="BV-S",
                                    display_name=name or None)  # fmt: skip
    written = _keys(clean_db)
    (migration,) = [m for m in discover() if m.name.startswith("0407_")]
    with clean_db.connection() as conn:
        conn.execute("UPDATE account SET search_key = NULL, search_prefixes = NULL")
        conn.execute(migration.sql.encode())
    backfilled = _keys(clean_db)
    for username, (_, key, prefixes) in written.items():
        assert backfilled[username][1] == key, username
        assert sorted(backfilled[username][2] or []) == sorted(prefixes or []), username


def test_the_search_uses_the_prefix_index(clean_db: Database, admin: Actor) -> None:
    """The words can be looked up in the index (the planner picks it once the table is large
    enough that reading every row costs more; at 4,000 a scan of the stored arrays is cheap)."""
    csv = "username,kind,display_name,unit_id\n" + "".join(
        f"tk.nv{g},clinician,Nhân Viên {g},BV-S\n" for g in range(1, 4001)
    )
    with clean_db.connection() as conn:
        assert accounts.import_accounts(conn, io.StringIO(csv)).created == 4000
        conn.execute("ANALYZE account")
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT id FROM account WHERE search_prefixes @> %s", (["nguyen", "van"],)
        ).fetchall()
    text = "\n".join(r[0] for r in plan)
    assert "Bitmap Index Scan on account_search_prefixes" in text, text
    assert _found(clean_db, admin, "nhan vien 3999") == {"tk.nv3999"}
