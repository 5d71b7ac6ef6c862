"""The web layer's data fetch for a book: merges followed, citizen entries and resource types
only when a section needs them."""

from __future__ import annotations

from datetime import UTC, datetime

from hssk import registry
from hssk.db import Database
from hssk.records import NewResource, bulk_upsert
from hssk.registry.merge import merge
from hssk.web import selfdata
from hssk.web.backend import book_data
from hssk.web.book import build_book, resource_types
from hssk.web.demo import Family
from hssk.web.models import SECTIONS
from hssk.web.partners import PARTNER_SECTIONS, sections_for


def _person(conn, key: str, day: int) -> int:  # type: ignore[no-untyped-def]
    rec = registry.SourceRecord(
        "web-backend-test", key, full_name=f"Trần Thị {key}", birth_date=f"1990-03-{day:02d}"
    )
    pid = registry.link(conn, rec).person_id
    body = {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"text": f"obs-{key}"}}  # fmt: skip
    bulk_upsert(conn, [NewResource(body, pid, f"web-backend-test:{key}")])
    return pid


def test_book_data_follows_merges_and_fetches_entries_only_when_asked(db: Database) -> None:
    with db.connection() as conn:
        a, b, c = (_person(conn, k, d) for k, d in (("Lan", 1), ("Mai", 12), ("Hoa", 23)))
        selfdata.add_entry(conn, a, "risk_factor", {"factor": "smoking"}, "test")
        merge(conn, a, b, actor="test")
        merge(conn, b, c, actor="test")  # c → b → a: two hops

        plain = book_data(conn, a, self_entries=False)
        assert plain is not None and plain.person.id == a and plain.self_entries == []
        texts = sorted(r.body["code"]["text"] for r in plain.resources)
        assert texts == [
            "obs-Hoa",
            "obs-Lan",
            "obs-Mai",
        ]  # the merged persons' data, read where it was written

        via_merged = book_data(conn, c, self_entries=True)
        assert via_merged is not None and via_merged.person.id == a
        assert via_merged.person.full_name == "Trần Thị Lan"
        assert [e.data for e in via_merged.self_entries] == [{"factor": "smoking"}]
        assert len(via_merged.resources) == 3

        assert book_data(conn, 2**62, self_entries=True) is None
        conn.rollback()


def test_each_section_is_built_from_its_resource_types_only(db: Database, family: Family) -> None:
    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    with db.connection() as conn:
        for pid in (family.mother, family.child):
            whole = book_data(conn, pid, self_entries=False)
            assert whole is not None and whole.resources
            choices = [(s,) for s in SECTIONS] + [sections_for(c) for c in PARTNER_SECTIONS]
            for sections in choices:
                types = resource_types(sections)
                part = book_data(conn, pid, self_entries=False, types=types)
                assert part is not None and {r.type for r in part.resources} <= set(types or ())
                for sensitive in (True, False):
                    args = {"sections": sections, "include_sensitive": sensitive, "now": now}
                    expected = build_book(whole.person, whole.resources, **args)
                    got = build_book(part.person, part.resources, **args)
                    assert got == expected, sections
        admin_only = book_data(conn, family.mother, self_entries=False, types=frozenset())
        assert admin_only is not None and admin_only.resources == []
