"""A small synthetic province for the tests and the benchmark of sharing and supervision.

Persons are written with COPY, resources with the record store's bulk upsert (so the change
hooks run as in production). Everything is synthetic; identifiers have a valid structure only.
When ``hssk.synth`` offers a population generator, the benchmark can load that instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from hssk.records import store

FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô")
MIDDLE = ("Văn", "Thị", "Đức", "Minh", "Thu", "Ngọc", "Hữu", "Thanh")
GIVEN = ("An", "Bình", "Chi", "Dũng", "Hà", "Hùng", "Lan", "Linh", "Mai", "Nam", "Phương", "Tú")
# Pre-2025 wards of Hà Nội (Ba Đình, Hoàn Kiếm) and the 2025 wards they merged into.
COMMUNES = (
    ("00001", "00004"), ("00004", "00004"), ("00006", "00004"), ("00007", "00008"),
    ("00008", "00008"), ("00022", "00008"), ("00013", "00025"), ("00016", "00025"),
    ("00019", "00025"), ("00037", "00070"), ("00040", "00070"), ("00043", "00070"),
)  # fmt: skip
OBS_CODES = (("8302-2", "cm", 150, 180), ("29463-7", "kg", 45, 80), ("8867-4", "/min", 60, 95))


def fold(text: str) -> str:
    """Lower case without diacritics (đ → d), single spaces: the registry's name key."""
    import unicodedata

    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).lower().split())


@dataclass
class Province:
    province: str = "01"
    department: str = "SYT01"
    facilities: list[str] = field(default_factory=list)  # facility codes
    stations: dict[str, str] = field(default_factory=dict)  # old commune → station unit id
    persons: int = 0
    first_person: int = 0


def _cccd(rng: random.Random, birth: date, sex: str) -> str:
    century = 0 if birth.year < 2000 else 2
    digit = century + (1 if sex == "F" else 0)
    return f"001{digit}{birth.year % 100:02d}{rng.randrange(10**6):06d}"


def load_province(
    conn: psycopg.Connection[Any],
    persons: int,
    *,
    seed: int = 7,
    resources_per_person: int = 3,
    today: date | None = None,
    silent_facility: bool = True,
    with_units: bool = True,
    rebuild: bool = True,
) -> Province:
    """Create units, ``persons`` residents and their visits in the caller's transaction.

    Large provinces are loaded in chunks: later chunks pass ``with_units=False`` (and another
    ``seed``) and continue the person numbering."""
    rng = random.Random(seed)
    today = today or datetime.now(UTC).date()
    prov = Province()
    units: list[tuple[Any, ...]] = [
        (prov.department, "department", "Sở Y tế Hà Nội", None, None, "01", None, None, None)
    ]
    for i, (old, new) in enumerate(COMMUNES):
        code = f"01{i + 1:03d}"
        uid = f"TYT{old}"
        prov.stations[old] = uid
        units.append(
            (uid, "station", f"Trạm Y tế {old}", prov.department, code, "01", new, old, "001")
        )
        prov.facilities.append(code)
    for j in range(3):
        code = f"01{900 + j}"
        units.append(
            (
                f"BV{j}",
                "hospital",
                f"Bệnh viện {j + 1}",
                prov.department,
                code,
                "01",
                None,
                None,
                None,
            )
        )
        prov.facilities.append(code)
    if with_units:
        with conn.cursor().copy(
            "COPY unit (id, kind, name, parent_id, facility_code, province_code, commune_code,"
            " commune_code_old, district_code_old) FROM STDIN"
        ) as copy:
            for u in units:
                copy.write_row(u)
    start = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM person").fetchone()[0]  # type: ignore[index]
    prov.first_person, prov.persons = start, persons
    households = max(1, persons // 3)
    hh_start = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM household").fetchone()[0]  # type: ignore[index]
    with conn.cursor().copy("COPY household (id, code, commune_code) FROM STDIN") as copy:
        for h in range(households):
            copy.write_row((hh_start + h, f"HGD{hh_start + h:08d}", COMMUNES[h % len(COMMUNES)][1]))
    rows = []
    for k in range(persons):
        pid = start + k
        sex = rng.choice("MF")
        age_days = rng.randrange(0, 90 * 365)
        birth = today - timedelta(days=age_days)
        family, middle, given = rng.choice(FAMILY), rng.choice(MIDDLE), rng.choice(GIVEN)
        name = f"{family} {middle} {given}"
        old, new = COMMUNES[pid % len(COMMUNES)]
        bhxh = f"01{rng.randrange(10**8):08d}"
        has_cccd = age_days > 14 * 365 or rng.random() < 0.5
        rows.append(
            (
                pid,
                _cccd(rng, birth, sex) if has_cccd else None,
                bhxh,
                f"HC4{'01'}{bhxh}" if rng.random() < 0.9 else None,
                name,
                fold(name),
                fold(family),
                fold(given),
                birth,
                "D",
                sex,
                "01",
                new,
                old,
                hh_start + rng.randrange(households),
                datetime(today.year, 1, 1, tzinfo=UTC) if rng.random() < 0.01 else None,
                rng.choice(("unverified", "standardized", "verified")),
            )
        )
    with conn.cursor().copy(
        "COPY person (id, cccd, bhxh, bhyt, full_name, name_key, family_key, given_key,"
        " birth_date, birth_precision, sex, province_code, commune_code, commune_code_old,"
        " household_id, deceased_at, verification) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)
    conn.execute(
        "SELECT setval(pg_get_serial_sequence('person', 'id'), (SELECT max(id) FROM person))"
    )
    conn.execute(
        "SELECT setval(pg_get_serial_sequence('household', 'id'), (SELECT max(id) FROM household))"
    )
    senders = prov.facilities[:-1] if silent_facility else prov.facilities
    stopped = senders[0] if silent_facility else None  # sent until 12 days ago, then stopped
    items: list[store.NewResource] = []
    for k in range(persons):
        pid = start + k
        for r in range(rng.randrange(0, resources_per_person * 2)):
            fac = rng.choice(senders)
            ago = rng.randrange(12, 30) if fac == stopped else rng.randrange(0, 30)
            when = datetime.combine(today - timedelta(days=ago), datetime.min.time(), UTC)
            items.extend(_visit(rng, pid, fac, when, r))
        if len(items) > 5000:
            store.bulk_upsert(conn, items)
            items = []
    store.bulk_upsert(conn, items)
    _receipts(conn, start, persons)
    if rebuild:  # the loader back-dated the receipts: recount from the store
        from hssk.catalog.completeness import rebuild_counters

        rebuild_counters(conn)
    return prov


def _receipts(conn: psycopg.Connection[Any], first: int, persons: int) -> None:
    """Received 0–3 days after the visit; one receipt per facility and day, one record in
    quarantine every fourth day."""
    conn.execute(
        """UPDATE resource SET last_updated = least(now(), effective
             + make_interval(hours => (abs(hashtext(id)) %% 72)))
           WHERE person_id BETWEEN %s AND %s AND effective IS NOT NULL""",
        (first, first + persons - 1),
    )
    conn.execute(
        """INSERT INTO ingest_receipt (job_id, kind, facility, received_at, first_visit,
             last_visit, records, stored, quarantined)
           SELECT (SELECT coalesce(max(job_id), 1000000000) FROM ingest_receipt)
                  + row_number() OVER (), 'synthetic', source_unit,
                  max(last_updated), min(effective)::date, max(effective)::date, count(*),
                  count(*), (extract(day FROM last_updated::date)::int %% 4 = 0)::int
           FROM resource WHERE person_id BETWEEN %s AND %s AND source_unit IS NOT NULL
           GROUP BY source_unit, last_updated::date""",
        (first, first + persons - 1),
    )


def _visit(
    rng: random.Random, pid: int, facility: str, when: datetime, n: int
) -> list[store.NewResource]:
    """One visit: an Encounter, a vital sign and sometimes a diagnosis (rarely a sensitive one)."""
    key = f"{facility}|P{pid}|V{n}"
    at = when.isoformat()
    out = [
        store.NewResource(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": f"Patient/person-{pid}"},
                "period": {"start": at},
                "serviceProvider": {"identifier": {"value": facility}},
            },
            person_id=pid,
            source_key=key + "|ENC",
            source_unit=facility,
        )
    ]
    code, unit, lo, hi = rng.choice(OBS_CODES)
    out.append(
        store.NewResource(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": f"Patient/person-{pid}"},
                "effectiveDateTime": at,
                "valueQuantity": {"value": rng.randrange(lo, hi), "unit": unit},
            },
            person_id=pid,
            source_key=key + "|OBS",
            source_unit=facility,
        )
    )
    roll = rng.random()
    if roll < 0.4:
        hiv = roll < 0.03
        icd = "B20" if hiv else rng.choice(("I10", "E11", "J45", "K29"))
        out.append(
            store.NewResource(
                {
                    "resourceType": "Condition",
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd}]},
                    "subject": {"reference": f"Patient/person-{pid}"},
                    "recordedDate": at,
                },
                person_id=pid,
                source_key=key + "|DX",
                source_unit=facility,
                sensitivity="HIV" if hiv else None,
            )
        )
    return out
