"""What citizens add to their book themselves, kept in ``citizen_entry`` apart from clinical data."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from hssk.web.forms import Form
from hssk.web.models import SelfEntry

RISK_FACTORS = {
    "smoking": "Hút thuốc lá, thuốc lào",
    "alcohol": "Uống rượu, bia",
    "inactivity": "Ít hoạt động thể lực",
    "exposure": "Tiếp xúc yếu tố có hại (nghề nghiệp, môi trường)",
    "other": "Khác",
}
RELATIONS = {
    "father": "Bố",
    "mother": "Mẹ",
    "spouse": "Vợ/chồng",
    "child": "Con",
    "sibling": "Anh/chị/em",
    "other": "Khác",
}
MEASUREMENTS = {
    "weight": ("Cân nặng", "kg", 1.0, 300.0),
    "systolic": ("Huyết áp tâm thu", "mmHg", 50.0, 260.0),
    "diastolic": ("Huyết áp tâm trương", "mmHg", 30.0, 160.0),
    "glucose": ("Đường huyết", "mmol/L", 1.0, 40.0),
}
KINDS = ("risk_factor", "family_member", "measurement")


def validate_entry(kind: str, raw: dict[str, str], today: date) -> tuple[Form, dict[str, str]]:
    """Check a self-entry form; returns the form (with errors) and the clean data."""
    form = Form(raw)
    data: dict[str, str] = {}
    if kind == "risk_factor":
        factor = form.choice("factor", RISK_FACTORS)
        detail = form.text("detail", max_len=200)
        if factor:
            data["factor"] = factor
        if detail:
            data["detail"] = detail
    elif kind == "family_member":
        name = form.text("name", required=True, max_len=100)
        relation = form.choice("relation", RELATIONS)
        condition = form.text("condition", max_len=200)
        data.update(
            {
                k: v
                for k, v in (("name", name), ("relation", relation), ("condition", condition))
                if v
            }
        )
    elif kind == "measurement":
        day = form.day("date", required=True, today=today)
        if day:
            data["date"] = day.isoformat()
        got = False
        for key, (_, unit, low, high) in MEASUREMENTS.items():
            value = form.number(key, low, high, unit)
            if value is not None:
                data[key] = f"{value:g}"
                got = True
        if not got and form.ok:
            form.error(
                "weight",
                "Nhập ít nhất một chỉ số (cân nặng, huyết áp hoặc đường huyết).",
                "Enter at least one measurement (weight, blood pressure or glucose).",
            )
        if (
            "systolic" in data
            and "diastolic" in data
            and float(data["diastolic"]) >= float(data["systolic"])
        ):
            form.error(
                "diastolic",
                "Huyết áp tâm trương phải nhỏ hơn tâm thu (ví dụ 120/80).",
                "Diastolic pressure must be lower than systolic (e.g. 120/80).",
            )
    else:
        form.error("kind", "Loại thông tin không hợp lệ.", "Unknown kind of entry.")
    return form, data


def add_entry(
    conn: psycopg.Connection[Any], person_id: int, kind: str, data: dict[str, str], by: str
) -> int:
    row = conn.execute(
        "INSERT INTO citizen_entry (person_id, kind, data, entered_by) VALUES (%s, %s, %s, %s) RETURNING id",
        (person_id, kind, Jsonb(data), by),
    ).fetchone()
    return int(row[0])  # type: ignore[index]


def delete_entry(conn: psycopg.Connection[Any], person_id: int, entry_id: int) -> bool:
    cur = conn.execute(
        "UPDATE citizen_entry SET deleted_at = now() WHERE id = %s AND person_id = %s AND deleted_at IS NULL",
        (entry_id, person_id),
    )
    return cur.rowcount == 1


def entries(conn: psycopg.Connection[Any], person_id: int) -> list[SelfEntry]:
    rows = conn.execute(
        """SELECT id, kind, data, created_at FROM citizen_entry
           WHERE person_id = %s AND deleted_at IS NULL ORDER BY created_at DESC, id DESC""",
        (person_id,),
    ).fetchall()
    return [SelfEntry(id=r[0], kind=r[1], data=r[2], created_at=r[3]) for r in rows]
