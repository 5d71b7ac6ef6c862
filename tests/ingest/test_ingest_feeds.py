"""Every feed of a small synthetic province: stored counts equal the source's records."""

from __future__ import annotations

import base64
import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from hssk.db import Database
from hssk.ingest import runner, station_map
from hssk.ingest.xml130_tables import QD4750_FROM
from hssk.synth import generate

ROW_TAGS = {
    "XML2": "CHI_TIET_THUOC",
    "XML3": "CHI_TIET_DVKT",
    "XML4": "CHI_TIET_CLS",
    "XML14": "CHI_TIEU_GIAYHEN_KHAMLAI",
    "XML13": "CHI_TIEU_GIAYCHUYENTUYEN",
}


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("feed")
    # four years of visits: those that ended before July 2024 come in QĐ 4210 (XML1–XML5)
    generate(out, persons=120, province="01", seed=11, visit_years=4.0)
    return out


def _source_rows(feed: Path) -> Counter[str]:
    """Rows per table counted straight from the files (regex on the decoded tables)."""
    rows: Counter[str] = Counter()
    for f in (feed / "his").rglob("*.xml"):
        text = f.read_text("utf-8")
        for loai, b64 in re.findall(r"<LOAIHOSO>(\w+)</LOAIHOSO><NOIDUNGFILE>([^<]*)<", text):
            inner = base64.b64decode(b64).decode("utf-8")
            tag = ROW_TAGS.get(loai)
            rows[loai] += len(re.findall(f"<{tag}[\\s>]", inner)) if tag else 1
    return rows


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_all_feeds_stored_with_source_counts(clean_db: Database, feed: Path) -> None:
    db = clean_db
    facilities = runner.ingest(db, "facilities", [feed / "facilities.csv"], workers=0)
    assert facilities.quarantined == 0
    population = runner.ingest(db, "population", [feed / "population/dan_cu.csv"], workers=0)
    assert population.records == len(_csv_rows(feed / "population/dan_cu.csv"))
    assert population.quarantined == 0 and population.stored == {}
    insurance = runner.ingest(db, "insurance", [feed / "insurance/bhyt.csv"], workers=0)
    assert insurance.stored == {"Coverage": len(_csv_rows(feed / "insurance/bhyt.csv"))}
    imm_rows = _csv_rows(feed / "immunization/tiem_chung.csv")
    imm = runner.ingest(db, "immunization", [feed / "immunization/tiem_chung.csv"], workers=0)
    assert imm.quarantined == 0, imm.errors[:3]
    assert imm.stored == {"Immunization": len(imm_rows)}
    station = runner.ingest(db, "station", [feed / "station/tram_y_te.csv"], workers=0)
    assert station.quarantined == 0, station.errors[:3]
    checkin = runner.ingest(db, "xml130", [feed / "checkin"], workers=0)
    visits = len(list((feed / "his").rglob("*.xml")))
    assert checkin.stored == {"Encounter": len(list((feed / "checkin").rglob("*.xml")))}
    his = runner.ingest(db, "xml130", [feed / "his"], workers=2)
    assert his.quarantined == 0, his.errors[:3]
    src = _source_rows(feed)
    with db.connection() as conn:
        have = dict(conn.execute("SELECT type, count(*) FROM resource GROUP BY type").fetchall())
        open_visits = conn.execute(
            "SELECT count(*) FROM resource WHERE type = 'Encounter' AND body->>'status' = 'in-progress'"
        ).fetchone()[0]
        receipts = conn.execute(
            "SELECT sum(records), sum(quarantined) FROM ingest_receipt WHERE job_id = %s",
            (his.job_id,),
        ).fetchone()
    station_rows = _csv_rows(feed / "station/tram_y_te.csv")
    checkups = sum(r["loai"] in station_map.CSV_CHECKUP_KINDS for r in station_rows)
    assert visits == src["XML1"] and checkups > 0
    assert have["Encounter"] == visits + checkups  # a station check-up is an Encounter too
    legacy = sum(1 for f in (feed / "his").rglob("*.xml") if f.parent.name < QD4750_FROM)
    assert 0 < legacy < visits  # both formats were loaded
    assert len(list((feed / "checkin").rglob("*.xml"))) <= visits - legacy
    assert open_visits == 0  # every check-in was completed by its full file
    assert have["MedicationRequest"] == have["MedicationDispense"] == src["XML2"]
    assert have["Procedure"] == src["XML3"]
    assert have["Appointment"] == src["XML14"]
    assert have["ServiceRequest"] == src["XML13"]
    assert have["Immunization"] == len(imm_rows)
    assert receipts == (visits, 0)
    # every death of the population register is on its person (stations agree on the day)
    dead = {r["ma_ban_ghi"]: r["ngay_mat"] for r in _csv_rows(feed / "population/dan_cu.csv")
            if r["ngay_mat"]}  # fmt: skip
    with db.connection() as conn:
        recorded = dict(conn.execute(
            """SELECT s.source_record_id, (p.deceased_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date::text
                 FROM person_source s JOIN person p ON p.id = s.person_id
                WHERE s.source = 'population' AND p.deceased_at IS NOT NULL""").fetchall())  # fmt: skip
    assert dead and recorded == dead
    # ingesting everything again changes nothing
    again = runner.ingest(db, "xml130", [feed / "his"], workers=0)
    assert again.stored == {} and again.skipped > 0


def test_job_duration_covers_the_whole_run(clean_db: Database, feed: Path) -> None:
    """The summary's seconds is the job's own duration: at least the time spent writing
    (a loop variable once overwrote its start time, so it reported only the last batch)."""
    runner.ingest(clean_db, "facilities", [feed / "facilities.csv"], workers=0)
    s = runner.ingest(clean_db, "xml130", [feed / "his"], workers=0, batch=5)
    assert s.records > 40  # many batches
    assert s.seconds >= s.timings["write"] > 0


def test_a_large_run_refreshes_planner_statistics(
    clean_db: Database, feed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a run that wrote many rows, the store's and registry's statistics are fresh (a
    book read with a plan made for an empty table is 30x slower at 1 M persons)."""
    monkeypatch.setattr(runner, "ANALYZE_AFTER", 50)
    runner.ingest(clean_db, "facilities", [feed / "facilities.csv"], workers=0)
    query = (
        "SELECT relname, coalesce(last_analyze, 'epoch') FROM pg_stat_user_tables"
        " WHERE relname IN ('resource', 'person')"
    )
    with clean_db.connection() as conn:
        before = dict(conn.execute(query).fetchall())
    runner.ingest(clean_db, "xml130", [feed / "his"], workers=0)
    with clean_db.connection() as conn:
        after = dict(conn.execute(query).fetchall())
    assert set(after) == {"resource", "person"}
    assert all(after[t] > before[t] for t in after)
