"""A source record is stored once: ``person_source.demographics`` leaves out its source and
record id, which the row's own columns hold, and the two together give back the whole record
(online link and batch load alike)."""

from __future__ import annotations

from dataclasses import asdict

from hssk.db import Database
from hssk.registry import SourceRecord, link
from hssk.registry.batch import load_batch
from hssk.registry.prepare import prepare

WHOLE = """SELECT demographics, demographics || jsonb_build_object('source', source,
                                                                 'record_id', source_record_id)
           FROM person_source WHERE source = %s AND source_record_id = %s"""


def _sent(rec: SourceRecord) -> dict[str, object]:
    return {k: v for k, v in asdict(rec).items() if v is not None}


def test_demographics_with_their_columns_give_back_the_record(clean_db: Database) -> None:
    online = SourceRecord("population", "DC01", "Trần Thị Mai", "1990-02-03", "F",
                          cccd="001190000123", phone="0912345678", province_code="01",
                          commune_code="00004", address="Số 1, Phường Ba Đình")  # fmt: skip
    batch = SourceRecord("immunization:TCMR", "TC07", "Lê Văn An", "2020-05", "M",
                         province_code="01")  # fmt: skip
    with clean_db.connection() as conn:
        link(conn, online)
        load_batch(conn, [prepare(batch)], [0])
        for rec in (online, batch):
            stored, whole = conn.execute(WHOLE, (rec.source, rec.record_id)).fetchone()
            assert "source" not in stored and "record_id" not in stored
            assert whole == _sent(rec)
