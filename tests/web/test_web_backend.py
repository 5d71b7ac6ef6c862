"""The web layer's data fetch for a book: merges followed, citizen entries only when asked."""

from __future__ import annotations

from hssk import registry
from hssk.db import Database
from hssk.records import NewResource, bulk_upsert
from hssk.registry.merge import merge
from hssk.web import selfdata
from hssk.web.backend import book_data


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
        assert texts == ["obs-Hoa", "obs-Lan", "obs-Mai"]  # the merged persons' data moved

        via_merged = book_data(conn, c, self_entries=True)
        assert via_merged is not None and via_merged.person.id == a
        assert via_merged.person.full_name == "Trần Thị Lan"
        assert [e.data for e in via_merged.self_entries] == [{"factor": "smoking"}]
        assert len(via_merged.resources) == 3

        assert book_data(conn, 2**62, self_entries=True) is None
        conn.rollback()
