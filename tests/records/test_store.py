import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hssk.db import Database
from hssk.records import store


def _obs(value: float, code: str = "8480-6") -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-03-04T08:00:00+07:00",
        "valueQuantity": {"value": value, "unit": "mmHg"},
    }


def test_save_versions_and_history(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        first, created = store.save(conn, _obs(120), person_id=1)
        assert created and first.version == 1 and first.body["meta"]["versionId"] == "1"
        same, created = store.save(conn, {**_obs(120), "id": first.id}, person_id=1)
        assert not created and same.version == 1  # identical content: no new version
        second, _ = store.save(conn, {**_obs(135), "id": first.id}, person_id=1)
        assert second.version == 2
        versions = store.history(conn, "Observation", first.id)
        assert [v.version for v in versions] == [2, 1]
        assert versions[1].body["valueQuantity"]["value"] == 120
        assert store.vread(conn, "Observation", first.id, 1).body["valueQuantity"]["value"] == 120
        with pytest.raises(store.VersionConflict):
            store.save(conn, {**_obs(140), "id": first.id}, if_match=1)
        assert store.delete(conn, "Observation", first.id)
        with pytest.raises(store.Gone):
            store.read(conn, "Observation", first.id)
        assert [v.version for v in store.history(conn, "Observation", first.id)] == [3, 2, 1]


def test_bulk_upsert_idempotent_by_source_key(clean_db: Database) -> None:
    items = [
        store.NewResource(_obs(100 + i), person_id=7, source_key=f"01001|LK{i}|XML4|1")
        for i in range(50)
    ]
    with clean_db.connection() as conn:
        r1 = store.bulk_upsert(conn, items)
        assert r1.created["Observation"] == 50 and r1.unchanged == 0
        r2 = store.bulk_upsert(conn, items)
        assert sum(r2.created.values()) == 0 and sum(r2.updated.values()) == 0
        assert r2.unchanged == 50
        changed = list(items)
        changed[3] = store.NewResource(_obs(999), person_id=7, source_key=items[3].source_key)
        r3 = store.bulk_upsert(conn, changed)
        assert r3.updated["Observation"] == 1 and r3.unchanged == 49
        rid = store.id_for_source_key("Observation", items[3].source_key or "")
        hist = store.history(conn, "Observation", rid)
        assert [h.version for h in hist] == [2, 1]
        assert hist[0].body["valueQuantity"]["value"] == 999
        assert hist[0].body["meta"]["versionId"] == "2"
        (n,) = conn.execute("SELECT count(*) FROM resource").fetchone()
        assert n == 50
        assert len(store.everything(conn, 7)) == 50


def test_bulk_upsert_keeps_meta_labels_and_profiles(clean_db: Database) -> None:
    body = {**_obs(80), "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}],
                                 "profile": ["http://example.org/p"]}}  # fmt: skip
    with clean_db.connection() as conn:
        store.bulk_upsert(conn, [store.NewResource(body, person_id=2, source_key="k1")])
        rid = store.id_for_source_key("Observation", "k1")
        got = store.read(conn, "Observation", rid).body
        assert got["meta"]["security"][0]["code"] == "HIV"
        assert got["meta"]["profile"] == ["http://example.org/p"]
        assert got["meta"]["versionId"] == "1"
        # same content again: unchanged; a changed label alone is a new version
        again = store.bulk_upsert(conn, [store.NewResource(body, person_id=2, source_key="k1")])
        assert again.unchanged == 1
        relabelled = {**body, "meta": {"security": [{"code": "PSY"}]}}
        r = store.bulk_upsert(conn, [store.NewResource(relabelled, person_id=2, source_key="k1")])
        assert r.updated["Observation"] == 1
        assert store.read(conn, "Observation", rid).body["meta"]["versionId"] == "2"


@given(rtype=st.sampled_from(["Encounter", "Observation"]), key=st.text(max_size=60))
def test_id_for_source_key_is_uuid5(rtype: str, key: str) -> None:
    assert store.id_for_source_key(rtype, key) == str(uuid.uuid5(store.NAMESPACE, f"{rtype}|{key}"))


HOSTILE = ["a\tb", "c\nd", "e\\f", '"q"', "{x,y}", "\\N", "đ Ư \r", "", "NULL"]


def test_bulk_copy_keeps_hostile_text_exact(clean_db: Database) -> None:
    """Rows COPYed straight into the store (new keys) keep tabs, newlines, backslashes,
    quotes and braces exactly, in the body and in the indexed columns."""
    items = []
    for i, text in enumerate(HOSTILE):
        body = _obs(100 + i, code=f"c{i}{text}")
        body["note"] = [{"text": f"ghi chú {text}"}]
        items.append(
            store.NewResource(body, person_id=9, source_key=f"k{i}{text}", source_unit=text)
        )
    with clean_db.connection() as conn:
        res = store.bulk_upsert(conn, items)
        assert res.created["Observation"] == len(HOSTILE)
        for i, text in enumerate(HOSTILE):
            rid = store.id_for_source_key("Observation", f"k{i}{text}")
            row = conn.execute(
                "SELECT body, codes, source_key, source_unit, version, person_id, last_updated"
                " FROM resource WHERE type = 'Observation' AND id = %s",
                (rid,),
            ).fetchone()
            assert row is not None
            body, codes, source_key, unit, version, pid, at = row
            assert body["note"][0]["text"] == f"ghi chú {text}"
            assert body["meta"]["versionId"] == "1" and body["id"] == rid
            assert body["meta"]["lastUpdated"] == at.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            assert f"c{i}{text}" in codes and f"http://loinc.org|c{i}{text}" in codes
            assert (source_key, unit, version, pid) == (f"k{i}{text}", text, 1, 9)
        again = store.bulk_upsert(conn, items)  # the same rows again: nothing new
        assert again.unchanged == len(HOSTILE) and not again.created and not again.updated


def test_bulk_upsert_mixes_new_and_changed_rows(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        store.bulk_upsert(conn, [store.NewResource(_obs(1), 3, source_key="m1")])
        res = store.bulk_upsert(
            conn,
            [
                store.NewResource(_obs(2), 3, source_key="m1"),  # changed
                store.NewResource(_obs(3), 3, source_key="m2"),  # new
            ],
            versions=True,
        )
        assert res.updated["Observation"] == 1 and res.created["Observation"] == 1
        m1 = store.id_for_source_key("Observation", "m1")
        assert res.versions[("Observation", m1)] == 2
        assert [s.version for s in store.history(conn, "Observation", m1)] == [2, 1]


def test_copy_of_new_rows_gives_way_when_a_key_exists(clean_db: Database) -> None:
    """If another writer stored a key between the existence check and the COPY, the COPY is
    rolled back to its savepoint (nothing half-written) and the caller upserts instead."""
    with clean_db.connection() as conn:
        store.bulk_upsert(conn, [store.NewResource(_obs(1), 3, source_key="race")])
        rid = store.id_for_source_key("Observation", "race")
        other = store.id_for_source_key("Observation", "other")
        latest = {
            ("Observation", other): store.NewResource(_obs(5), 3, source_key="other"),
            ("Observation", rid): store.NewResource(_obs(2), 3, source_key="race"),
        }
        result, changes = store.BulkResult(), []
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows = store._copy_rows(latest, list(latest), stamp)
        ok = store._copy_new(conn, rows, latest, list(latest), result, changes)
        assert not ok and not changes and not result.created
        n = conn.execute("SELECT count(*) FROM resource WHERE id = %s", (other,)).fetchone()
        assert n == (0,)  # the savepoint took the whole COPY back
        assert store.read(conn, "Observation", rid).body["valueQuantity"]["value"] == 1


def test_create_only_leaves_a_stored_resource_as_it_is(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        store.bulk_upsert(conn, [store.NewResource(_obs(1), 3, source_key="c1")])
        res = store.bulk_upsert(
            conn,
            [
                store.NewResource(_obs(2), 3, source_key="c1", create_only=True),
                store.NewResource(_obs(3), 3, source_key="c2", create_only=True),
            ],
        )
        assert res.unchanged == 1 and res.created["Observation"] == 1 and not res.updated
        c1 = store.id_for_source_key("Observation", "c1")
        assert store.read(conn, "Observation", c1).body["valueQuantity"]["value"] == 1


def test_an_id_holding_the_list_separator_is_stored_and_updated(clean_db: Database) -> None:
    odd = "x\x1fy"
    with clean_db.connection() as conn:
        first = store.bulk_upsert(conn, [store.NewResource({**_obs(1), "id": odd}, 3)])
        again = store.bulk_upsert(conn, [store.NewResource({**_obs(2), "id": odd}, 3)])
        assert first.created["Observation"] == 1 and again.updated["Observation"] == 1
        assert store.read(conn, "Observation", odd).version == 2


def test_locate_many_answers_each_key_exactly(clean_db: Database) -> None:
    """The locator's answer for a bundle's keys: a person, no person, not stored; a key the
    joined list cannot carry is not asked (and not claimed as absent)."""
    with clean_db.connection() as conn:
        store.bulk_upsert(
            conn,
            [
                store.NewResource({**_obs(1), "id": "with-person"}, 7),
                store.NewResource({**_obs(2), "id": "no-person"}, None),
            ],
        )
        keys = [
            ("Observation", "with-person"),
            ("Observation", "no-person"),
            ("Observation", "never"),
            ("Patient", "with-person"),  # same id, another type: not stored
            ("Observation", "x\x1fy"),
        ]
        located = store.locate_many(conn, keys)
        assert located.persons == {
            ("Observation", "with-person"): 7,
            ("Observation", "no-person"): None,
        }
        assert located.keys == frozenset(keys[:4])
        now = conn.execute("SELECT now()").fetchone()
        assert now is not None and located.at == now[0]
        assert store.locate_many(conn, []).persons == {}


def test_the_locator_is_probed_by_key_not_scanned(clean_db: Database) -> None:
    """With thousands of located resources a bundle's existence check still reads the locator by
    its key, once per asked key (as a join PostgreSQL hashed the keys and read it all)."""
    with clean_db.connection() as conn:
        store.bulk_upsert(
            conn, [store.NewResource(_obs(i), i % 50, source_key=f"s{i}") for i in range(3000)]
        )
        conn.execute("ANALYZE resource_locator")
        keys = [("Observation", str(uuid.uuid4())) for _ in range(100)]
        sql = store._PROBE
        plan = conn.execute(
            "EXPLAIN (FORMAT JSON) SELECT k.type, k.id, l.person_id "
            f"FROM unnest(%s::text[], %s::text[]) AS k(type, id) {sql}",
            ([k[0] for k in keys], [k[1] for k in keys]),
        ).fetchone()
        assert plan is not None
        text = str(plan[0])
        assert "Seq Scan" not in text and "resource_locator_pkey" in text
        assert store.locate_many(conn, keys).persons == {}
        stored = store.id_for_source_key("Observation", "s7")
        assert store.locate_many(conn, [("Observation", stored)]).persons == {
            ("Observation", stored): 7
        }


def test_bulk_upsert_takes_the_callers_locator_answer_and_survives_a_stale_one(
    clean_db: Database,
) -> None:
    """The FHIR bulk writer hands the locator's answer it read for the owners to bulk_upsert.
    Stored meanwhile (the answer says 'not stored'): the COPY gives way and the write is an
    update, not a second resource."""
    with clean_db.connection() as conn:
        keys = [("Observation", "a1"), ("Observation", "a2")]
        located = store.locate_many(conn, keys)
        assert located.persons == {}
        store.save(conn, {**_obs(1), "id": "a1"}, person_id=3)  # after the answer was read
        res = store.bulk_upsert(
            conn,
            [
                store.NewResource({**_obs(2), "id": "a1"}, 3),
                store.NewResource({**_obs(3), "id": "a2"}, 3),
            ],
            versions=True,
            located=located,
        )
        assert res.versions == {("Observation", "a1"): 2, ("Observation", "a2"): 1}
        assert store.read(conn, "Observation", "a1").body["valueQuantity"]["value"] == 2
        n = conn.execute("SELECT count(*) FROM resource_locator WHERE id IN ('a1', 'a2')")
        assert n.fetchone() == (2,)
        # an answer that did not ask every key is not trusted: the store asks itself
        partial = store.locate_many(conn, keys[:1])
        again = store.bulk_upsert(
            conn,
            [store.NewResource({**_obs(4), "id": "a2"}, 3)],
            versions=True,
            located=partial,
        )
        assert again.versions == {("Observation", "a2"): 2}
        # owners: from the answer for the keys it asked, from the locator for the others
        fresh = store.locate_many(conn, keys[:1])
        owners = store.owners(conn, [*keys, ("Observation", "none")], fresh)
        assert set(owners) == set(keys) and owners[keys[1]].person_id == 3
