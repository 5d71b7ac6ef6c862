import pytest

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
