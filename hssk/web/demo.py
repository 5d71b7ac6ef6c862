"""A small synthetic family for the pages: a mother with a full record and her baby.

Used by the browser tests, the screenshots of the user guide and the benchmark. Every name and
number is invented. Units, persons and accounts are created through their components'
functions.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from hssk import registry
from hssk.access import accounts, relations
from hssk.kernel import clock
from hssk.kernel.codes import ICD10, LOINC
from hssk.records import NewResource, bulk_upsert

COMMUNE = "09556"  # phường Hà Đông, Hà Nội (2025 code)
PASSWORD = "Mat-khau-demo-2026"  # demo staff password (synthetic accounts only)
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"


@dataclass(frozen=True)
class Family:
    mother: int
    child: int
    mother_cccd: str
    mother_phone: str
    hospital: str
    other_hospital: str
    station: str
    clinician: str  # username
    station_user: str  # username
    outsider: int  # a person with no link to the clinician (needs a basis)
    outsider_cccd: str


def _n(text: str) -> int:
    """A stable number from a tag (``hash`` changes between processes)."""
    return zlib.crc32(text.encode())


def _iso(day: date | datetime) -> str:
    if isinstance(day, datetime):
        return day.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return day.isoformat()


def _cat(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBS_CAT, "code": code}]}]


def _obs(pid: int, key: str, code: str, text: str, when: datetime, **value: Any) -> NewResource:
    body = {
        "resourceType": "Observation",
        "status": "final",
        "category": _cat(value.pop("category", "vital-signs")),
        "code": {"coding": [{"system": LOINC, "code": code}], "text": text},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": _iso(when),
        **value,
    }
    return NewResource(body, pid, f"demo:{pid}:{key}")


def _qty(v: float, unit: str) -> dict[str, Any]:
    return {"value": v, "unit": unit}


def seed_family(conn: psycopg.Connection[Any], today: date | None = None, tag: str = "") -> Family:
    """Create the demo family (idempotent for the same ``tag``)."""
    today = today or clock.today()
    now = datetime(today.year, today.month, today.day, 9, 0, tzinfo=UTC)
    cccd = "001190012345" if not tag else f"0011900{_n(tag) % 100000:05d}"
    phone = "0912345678" if not tag else f"09{_n(tag + 'p') % 10**8:08d}"
    mother = registry.link(
        conn,
        registry.SourceRecord(
            "demo", f"mother{tag}", full_name="Nguyễn Thị Hoà", birth_date="1990-04-12", sex="F",
            cccd=cccd, bhyt=f"GD4010{cccd[-9:]}", phone=phone,
            address="Số 12 ngõ 45 phố Quang Trung, phường Hà Đông, Hà Nội",
            commune_code=COMMUNE, province_code="01",
        ),
    ).person_id  # fmt: skip
    birth = today - timedelta(days=300)  # about 10 months old: doses done, due and overdue
    child = registry.link(
        conn,
        registry.SourceRecord(
            "demo", f"child{tag}", full_name="Trần Minh An", birth_date=birth.isoformat(),
            sex="M", temp_card=f"TT{_n(tag) % 10**8:08d}", mother_person_id=mother,
        ),
    ).person_id  # fmt: skip
    outsider_cccd = "001085009876" if not tag else f"0010850{_n(tag + 'o') % 100000:05d}"
    outsider = registry.link(
        conn,
        registry.SourceRecord(
            "demo", f"outsider{tag}", full_name="Lê Văn Bình", birth_date="1985-09-03",
            sex="M", cccd=outsider_cccd,
        ),
    ).person_id  # fmt: skip
    person = registry.get_person(conn, mother)
    commune = person.commune_code if person else None
    hosp, other, station = f"H01{tag}", f"H02{tag}", f"TYT{tag}"
    accounts.create_unit(conn, hosp, "hospital", "Bệnh viện Đa khoa Hà Đông")
    accounts.create_unit(conn, other, "hospital", "Bệnh viện Bạch Mai")
    accounts.create_unit(
        conn, station, "station", "Trạm Y tế phường Hà Đông", commune_code=commune or "00000"
    )
    for username, kind, unit, roles, pid, ph in (
        (f"citizen.{mother}", "citizen", None, (), mother, phone),
        (f"bs.lan{tag}", "clinician", hosp, ("clinician",), None, None),
        (f"tyt.hung{tag}", "staff", station, ("station",), None, None),
    ):
        if accounts.find_account(conn, username) is None:
            accounts.create_account(
                conn, username, kind, unit_id=unit, roles=roles, person_id=pid, phone=ph,
                password=PASSWORD if kind != "citizen" else None,
                display_name={"clinician": "BS. Phạm Thị Lan", "staff": "CB. Đỗ Văn Hùng"}.get(kind),
            )  # fmt: skip
    relations.link_guardian(conn, mother, child, relation="parent", created_by="demo")
    bulk_upsert(
        conn, _mother_record(mother, hosp, other, now) + _child_record(child, birth, station)
    )
    return Family(mother, child, cccd, phone, hosp, other, station, f"bs.lan{tag}",
                  f"tyt.hung{tag}", outsider, outsider_cccd)  # fmt: skip


def _mother_record(pid: int, hosp: str, other: str, now: datetime) -> list[NewResource]:
    pref = {"reference": f"Patient/{pid}"}
    h1 = {"reference": f"Organization/{hosp}", "display": "Bệnh viện Đa khoa Hà Đông"}
    h2 = {"reference": f"Organization/{other}", "display": "Bệnh viện Bạch Mai"}
    out: list[NewResource] = []
    visits = [
        (now - timedelta(days=d), h1 if i % 2 == 0 else h2) for i, d in enumerate((400, 220, 40))
    ]
    dx = [("I10", "Tăng huyết áp vô căn (nguyên phát)"), ("E11.9", "Bệnh đái tháo đường type 2"),
          ("J20.9", "Viêm phế quản cấp")]  # fmt: skip
    for i, (when, org) in enumerate(visits):
        eid = f"demo-enc-{pid}-{i}"
        cid = f"demo-cond-{pid}-{i}"
        out.append(NewResource({
            "resourceType": "Condition", "id": cid, "subject": pref,
            "encounter": {"reference": f"Encounter/{eid}"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": ICD10, "code": dx[i][0], "display": dx[i][1]}]},
            "recordedDate": _iso(when),
        }, pid, f"demo:{pid}:cond{i}"))  # fmt: skip
        out.append(NewResource({
            "resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"code": "AMB"}, "subject": pref, "serviceProvider": org,
            "period": {"start": _iso(when), "end": _iso(when + timedelta(hours=2))},
            "reasonCode": [{"text": ["Đau đầu, chóng mặt", "Khát nước, tiểu nhiều", "Ho, sốt nhẹ"][i]}],
            "diagnosis": [{"condition": {"reference": f"Condition/{cid}"}, "rank": 1}],
            "participant": [{"individual": {"display": "BS. Phạm Thị Lan"}}],
        }, pid, f"demo:{pid}:enc{i}"))  # fmt: skip
        out.append(NewResource({
            "resourceType": "MedicationRequest", "status": "completed", "intent": "order",
            "subject": pref, "encounter": {"reference": f"Encounter/{eid}"}, "authoredOn": _iso(when),
            "medicationCodeableConcept": {"text": ["Amlodipin 5mg", "Metformin 500mg", "Amoxicilin 500mg"][i]},
            "dosageInstruction": [{"text": ["Uống 1 viên mỗi sáng", "Uống 1 viên sau ăn, ngày 2 lần",
                                            "Uống 1 viên, ngày 3 lần, trong 7 ngày"][i]}],
            "dispenseRequest": {"quantity": {"value": [30, 60, 21][i], "unit": "viên"}},
            "requester": org,
        }, pid, f"demo:{pid}:rx{i}"))  # fmt: skip
        bp = [(150, 95), (138, 88), (128, 82)][i]
        out += [
            _obs(pid, f"h{i}", "8302-2", "Chiều cao", when, valueQuantity=_qty(156, "cm"),
                 encounter={"reference": f"Encounter/{eid}"}),
            _obs(pid, f"w{i}", "29463-7", "Cân nặng", when, valueQuantity=_qty([64, 61.5, 59][i], "kg"),
                 encounter={"reference": f"Encounter/{eid}"}),
            _obs(pid, f"bmi{i}", "39156-5", "BMI", when,
                 valueQuantity=_qty(round([64, 61.5, 59][i] / 1.56**2, 1), "kg/m²")),
            _obs(pid, f"bp{i}", "85354-9", "Huyết áp", when, component=[
                {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": _qty(bp[0], "mmHg")},
                {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": _qty(bp[1], "mmHg")}]),
            _obs(pid, f"glu{i}", "2339-0", "Glucose máu", when, category="laboratory",
                 valueQuantity=_qty([7.8, 7.1, 6.4][i], "mmol/L"),
                 referenceRange=[{"low": _qty(3.9, "mmol/L"), "high": _qty(6.4, "mmol/L")}],
                 performer=[org], encounter={"reference": f"Encounter/{eid}"}),
        ]  # fmt: skip
    last = visits[-1][0]
    out += [
        _obs(pid, "hba1c", "4548-4", "HbA1c", last, category="laboratory",
             valueQuantity=_qty(7.2, "%"), referenceRange=[{"low": _qty(4, "%"), "high": _qty(6.0, "%")}],
             performer=[h2], encounter={"reference": f"Encounter/demo-enc-{pid}-2"}),
        _obs(pid, "chol", "2093-3", "Cholesterol toàn phần", last, category="laboratory",
             valueQuantity=_qty(4.6, "mmol/L"), referenceRange=[{"high": _qty(5.2, "mmol/L")}],
             performer=[h2], encounter={"reference": f"Encounter/demo-enc-{pid}-2"}),
        _obs(pid, "smoke", "72166-2", "Hút thuốc lá", last, category="social-history",
             valueCodeableConcept={"text": "Không bao giờ hút"}),
        NewResource({
            "resourceType": "AllergyIntolerance", "patient": pref, "criticality": "high",
            "category": ["medication"], "code": {"text": "Penicilin"},
            "reaction": [{"manifestation": [{"text": "Nổi mề đay, khó thở"}]}],
            "recordedDate": _iso(visits[0][0]),
        }, pid, f"demo:{pid}:allergy"),
        NewResource({
            "resourceType": "DiagnosticReport", "status": "final", "subject": pref,
            "category": [{"coding": [{"code": "RAD"}], "text": "Chẩn đoán hình ảnh"}],
            "code": {"text": "X-quang ngực thẳng"}, "effectiveDateTime": _iso(last),
            "conclusion": "Không thấy tổn thương nhu mô phổi.", "performer": [h2],
            "encounter": {"reference": f"Encounter/demo-enc-{pid}-2"},
        }, pid, f"demo:{pid}:xray"),
        NewResource({
            "resourceType": "Composition", "status": "final", "subject": pref,
            "type": {"text": "Tóm tắt hồ sơ bệnh án"}, "title": "Tóm tắt hồ sơ bệnh án",
            "date": _iso(last), "author": [h2], "encounter": {"reference": f"Encounter/demo-enc-{pid}-2"},
            "section": [
                {"title": "Quá trình bệnh lý", "text": {"status": "generated", "div": "<div>Ho 5 ngày, sốt nhẹ.</div>"}},
                {"title": "Hướng điều trị tiếp", "text": {"status": "generated", "div": "<div>Tái khám sau 2 tuần.</div>"}},
            ],
        }, pid, f"demo:{pid}:summary"),
        NewResource({
            "resourceType": "ServiceRequest", "status": "completed", "intent": "order", "subject": pref,
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}], "text": "Giấy chuyển tuyến"}],
            "code": {"text": "Khám chuyên khoa nội tiết"}, "authoredOn": _iso(visits[1][0]),
            "requester": h2, "performer": [h1],
            "reasonCode": [{"coding": [{"system": ICD10, "code": "E11.9"}], "text": "Đái tháo đường type 2"}],
        }, pid, f"demo:{pid}:referral"),
        NewResource({
            "resourceType": "Appointment", "status": "booked", "description": "Tái khám tăng huyết áp, đái tháo đường",
            "start": _iso(now + timedelta(days=14)), "end": _iso(now + timedelta(days=14, hours=2)),
            "participant": [{"actor": pref, "status": "accepted"}, {"actor": h1, "status": "accepted"}],
        }, pid, f"demo:{pid}:appt"),
    ]  # fmt: skip
    return out


def _child_record(pid: int, birth: date, station: str) -> list[NewResource]:
    pref = {"reference": f"Patient/{pid}"}
    org = {"reference": f"Organization/{station}", "display": "Trạm Y tế phường Hà Đông"}
    doses = [
        (0, "VGB sơ sinh (Viêm gan B)", "08"),
        (1, "BCG", "19"),
        (62, "DPT-VGB-Hib (5 trong 1) (Quinvaxem)", None),
        (62, "bOPV (Bại liệt uống)", None),
        (93, "DPT-VGB-Hib (5 trong 1) (Quinvaxem)", None),
        (93, "bOPV (Bại liệt uống)", None),
    ]  # third 5-in-1 and OPV, IPV: not given → overdue; measles at 9 months → due
    out = []
    for i, (days, text, cvx) in enumerate(doses):
        concept: dict[str, Any] = {"text": text}
        if cvx:
            concept["coding"] = [{"system": "http://hl7.org/fhir/sid/cvx", "code": cvx}]
        out.append(NewResource({
            "resourceType": "Immunization", "status": "completed", "patient": pref,
            "vaccineCode": concept, "occurrenceDateTime": _iso(birth + timedelta(days=days)),
            "performer": [{"actor": org}],
        }, pid, f"demo:{pid}:imm{i}"))  # fmt: skip
    for i, (days, w, h) in enumerate(((0, 3.2, 50), (62, 5.6, 58), (93, 6.4, 61))):
        when = datetime(birth.year, birth.month, birth.day, 9, tzinfo=UTC) + timedelta(days=days)
        out += [
            _obs(pid, f"cw{i}", "29463-7", "Cân nặng", when, valueQuantity=_qty(w, "kg")),
            _obs(pid, f"ch{i}", "8302-2", "Chiều dài", when, valueQuantity=_qty(h, "cm")),
        ]
    return out
