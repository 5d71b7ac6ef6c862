import json
from pathlib import Path

import pytest

from hssk.catalog import bundle, completeness
from hssk.catalog.catalogs import CatalogError, catalogs, expand, get, load_catalog
from hssk.db import Database
from hssk.records import store
from tests.factories.supervision import load_province


def test_shipped_catalogs_have_their_sizes_and_labels() -> None:
    found = catalogs()
    sizes = {name: c.size for name, c in found.items()}
    assert sizes["qd1332"] == 46
    assert sizes["hanoi-73"] == 73
    assert sizes["byt-48"] == 48
    assert sizes["bhxh-80"] == 80
    assert sizes["ksk-adult"] > 90 and sizes["qd831"] > 60
    assert {n for n, c in found.items() if c.provisional} >= {"hanoi-73", "byt-48", "bhxh-80"}
    ksk = {f.code for f in get("ksk-adult").fields}
    assert {"HO_TEN", "SO_CCCD", "TSBT_BENH_TIM", "KHAM_MAT_PL", "PHAN_LOAI_SK"} <= ksk
    for cat in found.values():
        for f in cat.fields:
            assert f.label_vi and f.label_en and "{" not in f.fhirpath


def test_expand_shorthands() -> None:
    assert expand("{obs:8302-2}.value") == (
        "Bundle.entry.resource.ofType(Observation)"
        ".where(code.coding.where(code = '8302-2').exists()).value"
    )
    assert expand("{Patient}.gender") == "Bundle.entry.resource.ofType(Patient).gender"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"code": "X", "ref": "nope"}, "not in fields.json"),
        ({"code": "X", "vi": "a", "en": "a", "type": "blob", "path": "{Patient}"}, "type 'blob'"),
        (
            {"code": "X", "vi": "a", "en": "a", "type": "string", "path": "{Patient}.foo(1)"},
            "FHIRPath",
        ),
        ({"vi": "a"}, "no 'code'"),
    ],
)
def test_bad_catalog_is_a_clear_error(tmp_path: Path, field: dict, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "bad", "version": "1", "fields": [field]}))
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_extraction_over_a_bundle() -> None:
    cat = get("qd1332")
    row = (5, "Lê Thị Hà", None, None, "F", "001190123456", None, "HC4010123456789", None, None,
           None, "0912345678", "Số 1 Phúc Xá", "01", "00004", None, None, None)  # fmt: skip
    b = {"resourceType": "Bundle", "entry": [{"resource": bundle.patient_from_row(row)}]}
    b["entry"].append(
        {
            "resource": {
                "resourceType": "Observation",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
                "valueQuantity": {"value": 158, "unit": "cm"},
            }
        }
    )
    values = cat.extract(b)
    assert values["hc.ho_ten"] == ["Lê Thị Hà"]
    assert values["hc.so_cccd"] == ["001190123456"]
    assert values["kcb.chieu_cao"][0]["value"] == 158
    missing = cat.missing(b)
    assert "hc.ngay_sinh" in missing and "hc.ho_ten" not in missing
    assert len(missing) == cat.size - sum(1 for v in values.values() if v)


def _brute_force(conn, pid: int) -> dict[str, tuple[int, list[str]]]:
    prow = conn.execute(
        "SELECT id, full_name, birth_date, birth_precision, sex, cccd, bhxh, bhyt, passport, "
        "temp_card, health_id, phone, address, province_code, commune_code, household_id, "
        "mother_id, deceased_at FROM person WHERE id = %s",
        (pid,),
    ).fetchone()
    hh = conn.execute("SELECT code FROM household WHERE id = %s", (prow[15],)).fetchone()
    entries = [{"resource": bundle.patient_from_row(prow, hh[0] if hh else None)}]
    entries += [{"resource": s.body} for s in store.everything(conn, pid)]
    b = {"resourceType": "Bundle", "entry": entries}
    out = {}
    seen: dict[str, bool] = {}  # the same rule gives the same answer on the same bundle
    for cat in catalogs().values():
        # every rule evaluated by the reference engine (no shortcut on absent types)
        miss = []
        for f, fn in zip(cat.fields, cat.evaluators(), strict=True):
            if f.fhirpath not in seen:
                seen[f.fhirpath] = any(v not in ("", None, {}, []) for v in fn(b, {}))
            if not seen[f.fhirpath]:
                miss.append(f.code)
        out[cat.name] = (cat.size - len(miss), miss)
    return out


def _assert_matches_brute_force(conn) -> None:
    stored = {}
    for pid, cat, filled, missing in conn.execute(
        """SELECT person_id, catalog, filled, ARRAY(SELECT completeness_field_codes(missing))
           FROM completeness"""
    ):
        stored.setdefault(pid, {})[cat] = (filled, list(missing))
    pids = [r[0] for r in conn.execute("SELECT id FROM person ORDER BY id")]
    assert set(stored) == set(pids)
    for pid in pids:
        assert stored[pid] == _brute_force(conn, pid), pid


def test_incremental_completeness_equals_brute_force(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        prov = load_province(conn, 80, seed=3)
        (dirty,) = conn.execute("SELECT count(DISTINCT person_id) FROM catalog_dirty").fetchone()
        assert 0 < dirty <= 80  # the record hook marked the persons that got resources
    result = completeness.run(clean_db, batch=50)
    assert result.persons == 80  # dirty ones + new persons (queued by the registry trigger)
    with clean_db.connection() as conn:
        _assert_matches_brute_force(conn)
        # New data for some persons: only they are marked and recomputed.
        pids = [prov.first_person + i for i in (0, 5, 9)]
        store.bulk_upsert(
            conn,
            [
                store.NewResource(
                    {
                        "resourceType": "AllergyIntolerance",
                        "category": ["medication"],
                        "code": {"text": "Penicillin"},
                        "patient": {"reference": f"Patient/person-{p}"},
                    },
                    person_id=p,
                    source_key=f"test|allergy|{p}",
                    source_unit="01001",
                )
                for p in pids
            ],
        )
        conn.execute(
            "UPDATE person SET cccd = NULL, updated_at = now() + interval '1 second' WHERE id = %s",
            (prov.first_person + 20,),
        )
    with clean_db.connection() as conn:
        before = completeness.person_score(conn, pids[0])
        # the hook's counters agree with a recount from the store
        q_presence = "SELECT person_id FROM record_presence ORDER BY 1"
        q_seen = "SELECT facility, person_id FROM facility_person ORDER BY 1, 2"
        q_days = "SELECT facility, sum(changes) FROM facility_activity GROUP BY 1 ORDER BY 1"
        kept = [conn.execute(q).fetchall() for q in (q_presence, q_seen, q_days)]
        completeness.rebuild_counters(conn)
        assert kept == [conn.execute(q).fetchall() for q in (q_presence, q_seen, q_days)]
        assert len(kept[0]) > 3 and ("01001", pids[0]) in kept[1]
    result = completeness.run(clean_db, batch=50)
    assert result.persons == 4
    with clean_db.connection() as conn:
        after = completeness.person_score(conn, pids[0])
        assert after["qd1332"][0] == before["qd1332"][0] + 1  # ts.di_ung now filled
        _assert_matches_brute_force(conn)
        # Aggregates agree with the per-person rows.
        by_commune = completeness.aggregate(conn, "hanoi-73", "commune")
        (filled, total) = conn.execute(
            "SELECT sum(filled), sum(total) FROM completeness WHERE catalog = 'hanoi-73'"
        ).fetchone()
        assert sum(a.filled for a in by_commune) == filled
        assert sum(a.total for a in by_commune) == total
        districts = completeness.aggregate(conn, "hanoi-73", "district_old")
        assert {d.code for d in districts} <= {"001", "002"}
        assert sum(d.persons for d in districts) == 80
        assert sum(completeness.distribution(conn, "hanoi-73")) == 80
        facilities = completeness.aggregate(conn, "hanoi-73", "facility")
        assert facilities and all(f.code in prov.facilities for f in facilities)
        top = completeness.missing_fields(conn, "hanoi-73", facility=prov.facilities[0])
        assert top and top[0][1] > 0


def _rich_bundle() -> dict:
    pid = "Patient/person-1"
    cc = lambda *codes: {"coding": [{"system": "s", "code": c} for c in codes]}  # noqa: E731
    resources = [
        {"resourceType": "Patient", "name": [{"text": "A"}], "birthDate": "2001-02-03",
         "deceasedDateTime": "2024-01-01", "gender": "female",
         "identifier": [{"system": "https://fhir.hssk.vn/sid/cccd", "value": "001301000001",
                         "period": {"start": "2020-01-01"}}],
         "extension": [{"url": "x/ethnicity", "valueCoding": {"code": "01"}},
                       {"url": "x/household", "valueString": ""}],
         "contact": [{"relationship": [cc("MTH", "N")], "name": {"text": "Mẹ"}}]},
        {"resourceType": "Observation", "code": cc("8302-2", "local-h"), "valueQuantity": {"value": 1}},
        {"resourceType": "Observation", "code": cc("29463-7"), "valueString": ""},
        {"resourceType": "Observation", "code": cc("883-9"), "valueCodeableConcept": {"text": "O"},
         "category": [cc("social-history")]},
        {"resourceType": "Observation", "code": cc("KET_LUAN_BENH"), "valueString": "J45"},
        {"resourceType": "Condition", "code": cc("I10", "X"), "category": [cc("encounter-diagnosis")],
         "subject": {"reference": pid}},
        {"resourceType": "Condition", "code": cc("Q21"), "category": [cc("disability", "y")]},
        {"resourceType": "AllergyIntolerance", "category": ["medication", "food"], "code": {"text": "P"}},
        {"resourceType": "AllergyIntolerance", "category": ["food"], "code": {"text": "F"}},
        {"resourceType": "Immunization", "vaccineCode": {"text": "COVID-19 Pfizer"},
         "programEligibility": [cc("TCMR")]},
        {"resourceType": "Encounter", "class": {"code": "AMB"}, "type": [cc("KSK")],
         "period": {"start": "2025-01-01"}, "serviceProvider": {"identifier": {"value": "01001"}},
         "reasonCode": [{"text": "ho"}], "hospitalization": {"dischargeDisposition": cc("home")}},
        {"resourceType": "Composition", "type": cc("34133-9"), "date": "2025-01-02",
         "section": [{"code": cc("10164-2"), "text": {"div": "<div>x</div>"}}]},
        {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"text": "m"},
         "note": [{"text": "uống sau ăn"}]},
        {"resourceType": "ServiceRequest", "intent": "order", "id": "sr1"},
        {"resourceType": "Appointment", "start": "2025-02-01"},
        {"resourceType": "FamilyMemberHistory", "condition": [{"code": cc("E11")}]},
    ]  # fmt: skip
    return {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}


def test_fast_engine_agrees_with_fhirpathpy_on_every_rule() -> None:
    b = _rich_bundle()
    checked = 0
    for cat in catalogs().values():
        fast = cat.extract(b)
        slow = cat.extract(b, engine="fhirpathpy")
        assert fast == slow, cat.name
        checked += sum(1 for v in slow.values() if v)
        assert cat.missing(b) == [c for c, v in slow.items() if not v]
    assert checked > 150  # the bundle fills many rules, so the comparison means something


def test_fast_engine_agrees_on_vaccine_text_and_code_rules() -> None:
    """The vaccine rules (``text.lower().contains``, ``coding.where(… or code in …)``) run on
    the fast engine and agree with fhirpathpy on each way a dose can be written."""
    variants = [
        {"text": "Vắc xin COVID-19 Pfizer"},
        {"coding": [{"code": "VAT", "display": "Uốn ván"}]},
        {"coding": [{"code": "208"}, {"code": "x"}]},
        {"coding": [{"display": "Comirnaty (covid-19)"}]},
        {"text": "Uốn Ván hấp phụ"},
        {"text": "Sởi"},
        {"coding": [{"code": "MR", "display": "Sởi - Rubella"}]},
    ]
    fast_rules = 0
    filled: dict[str, int] = {"tc.covid": 0, "tc.uon_van": 0}
    for vaccine in variants:
        b = {"resourceType": "Bundle",
             "entry": [{"resource": {"resourceType": "Immunization", "vaccineCode": vaccine}}]}  # fmt: skip
        for cat in catalogs().values():
            fast_rules += sum(r.fast is not None for r in cat.rules())
            got = cat.extract(b)
            assert got == cat.extract(b, engine="fhirpathpy"), (cat.name, vaccine)
            for code in filled:
                filled[code] += bool(got.get(code))
    assert filled == {"tc.covid": 3 * 3, "tc.uon_van": 2}  # 3 COVID variants in 3 catalogs
    total = sum(c.size for c in catalogs().values()) * len(variants)
    assert fast_rules == total  # no rule of the shipped catalogs falls back to fhirpathpy


def test_full_rescoring_gives_the_rows_of_the_queue(clean_db: Database) -> None:
    """``rescore_all`` (ranges of ids, no queue draining) writes the completeness table the
    queue's job writes, empties the queue, and keeps the rollups equal to a recomputation."""
    from hssk.monitor import rollups

    table = """SELECT person_id, catalog, version, filled, total, missing FROM completeness
               ORDER BY 1, 2"""
    with clean_db.connection() as conn:
        load_province(conn, 90, seed=5)
    assert completeness.run(clean_db, batch=40).persons == 90
    with clean_db.connection() as conn:
        by_queue = conn.execute(table).fetchall()
        assert len(by_queue) == 90 * len(catalogs())
        assert len({r[3] for r in by_queue}) > 5  # scores differ between persons
        conn.execute("DELETE FROM completeness")  # as before any scoring
        completeness.mark_dirty(conn, [r[0] for r in by_queue[:10]])
    result = completeness.rescore_all(clean_db, chunk=25)
    assert result.persons == 90 and result.batches >= 4
    with clean_db.connection() as conn:
        assert conn.execute(table).fetchall() == by_queue
        assert conn.execute("SELECT count(*) FROM catalog_dirty").fetchone() == (0,)
        assert rollups.check(conn) == {}
