"""QĐ 130 hồ sơ → person (for the registry) + FHIR R4 resources, with per-record checks.

Source keys are ``facility|MA_LK|table|line`` so a re-sent hồ sơ updates the same resources.
A fault in the visit header (XML1/XML0) or an unreadable table quarantines the whole hồ sơ;
a fault in one line of a detail table quarantines that line only.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable
from operator import gt, itemgetter
from typing import Any

from hssk.ingest.model import (
    CS,
    GENDER,
    SD,
    Item,
    Problem,
    Unit,
    check_document,
    check_facility,
    check_icd10,
    check_identifier,
    clean_body,
    concept,
    instant,
    number,
    org_ref,
    parse_time,
    require,
    sex_code,
)
from hssk.ingest.xml130_tables import limits, tables
from hssk.ingest.xmlparse import HoSo, build_table, raw_document
from hssk.kernel import identifiers as ids
from hssk.kernel.codes import ICD10, LOINC, UCUM
from hssk.records import id_for_source_key
from hssk.registry.types import SourceRecord

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
ENCOUNTER_CLASS = {"03": "IMP", "04": "SS", "06": "OBSENC", "09": "SS"}
LOAI_KCB = {
    "01": "Khám bệnh",
    "02": "Điều trị ngoại trú",
    "03": "Điều trị nội trú",
    "04": "Điều trị nội trú ban ngày",
    "05": "Điều trị ngoại trú bệnh mạn tính",
    "06": "Điều trị lưu tại trạm y tế",
    "07": "Nhận thuốc theo hẹn",
    "08": "Điều trị ngoại trú bệnh mạn tính dài ngày",
    "09": "Điều trị nội trú dưới 4 giờ",
}
DEATH_RESULTS = {"5", "8"}
TOTALS = (
    "T_THUOC",
    "T_VTYT",
    "T_TONGCHI_BV",
    "T_TONGCHI_BH",
    "T_BNTT",
    "T_BNCCT",
    "T_BHTT",
    "T_NGUONKHAC",
    "T_BHTT_GDV",
)
DOCS = {
    "XML7": ("giay-ra-vien", "Giấy ra viện"),
    "XML8": ("tom-tat-ho-so-benh-an", "Tóm tắt hồ sơ bệnh án"),
    "XML9": ("giay-chung-sinh", "Giấy chứng sinh"),
    "XML10": ("giay-nghi-duong-thai", "Giấy nghỉ dưỡng thai"),
    "XML11": ("giay-nghi-viec-bhxh", "Giấy chứng nhận nghỉ việc hưởng BHXH"),
    "XML13": ("giay-chuyen-tuyen", "Giấy chuyển tuyến"),
}
# XML10 and XML11 keep their fields as data (the certificate's content, for the book and the
# insurance): period of leave, numbers, doctor.
STRUCTURED_DOCS = frozenset({"XML10", "XML11"})
KET_QUA_DTRI = {
    "1": "Khỏi",
    "2": "Đỡ",
    "3": "Không thay đổi",
    "4": "Nặng hơn",
    "5": "Tử vong",
    "6": "Tiên lượng nặng xin về",
    "7": "Chưa xác định",
    "8": "Tử vong ngoại viện",
}
HIV_LABEL = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "code": "HIV",
    "display": "HIV/AIDS information sensitivity",
}


class _Visit:
    """Context of one hồ sơ while mapping: keys, references, problems."""

    def __init__(self, fac: str, ma_lk: str):
        self.fac = fac
        self.ma_lk = ma_lk
        self.enc_key = f"{fac}|{ma_lk}|XML1"
        self.enc_ref = {"reference": f"Encounter/{id_for_source_key('Encounter', self.enc_key)}"}

    def key(self, table: str, line: str | int, *extra: str) -> str:
        return "|".join([self.fac, self.ma_lk, table, str(line), *extra])

    def ref(self, rtype: str, key: str) -> dict[str, str]:
        return {"reference": f"{rtype}/{id_for_source_key(rtype, key)}"}


_NO_LIMIT = 1 << 40
_Plan = tuple[tuple[int, ...], Callable[[list[str]], Any] | None]
_plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}


def _plan(table: str, names: tuple[str, ...]) -> _Plan:
    """For records of ``table`` with fields ``names`` (in that order): each field's maximum
    length and a getter of its Số fields. A number within the bound is within its length
    (which does not count a sign or decimal point); one over it is measured exactly."""
    spec = limits(table)
    bounds = []
    numeric = []
    for i, name in enumerate(names):
        size, num = spec.get(name, (None, False))
        bounds.append(_NO_LIMIT if size is None else size)
        if num:
            numeric.append(i)
    getter = itemgetter(*numeric) if numeric else None
    return tuple(bounds), getter


def check_layout(table: str, row: dict[str, str], where: str, problems: list[Problem]) -> None:
    """Each field within the QĐ 4750 appendix's maximum length, and a number where the
    appendix types it 'Số'. A problem the mapping already found in a field is not repeated.

    Runs for every record: the usual good record is passed by two C-level checks (lengths
    against bounds, float() over its numbers); only a suspect one is looked at field by
    field."""
    names = tuple(row)
    plan = _plans.get((table, names))
    if plan is None:
        if len(_plans) > 4096:  # unusual field sets: keep the cache bounded
            _plans.clear()
        plan = _plans[(table, names)] = _plan(table, names)
    bounds, numeric = plan
    values = list(row.values())
    if not any(map(gt, map(len, values), bounds)):
        if numeric is None:
            return
        nums = numeric(values)
        try:
            sum(map(float, filter(None, (nums,) if type(nums) is str else nums)))
            return
        except ValueError:  # a decimal comma, or not a number: field by field
            pass
    _check_fields(table, row, where, problems)


def _check_fields(table: str, row: dict[str, str], where: str, problems: list[Problem]) -> None:
    spec = limits(table)
    for name, value in row.items():
        s = spec.get(name)
        if s is None or not value:
            continue
        size, num = s
        if num:
            try:
                float(value.replace(",", "."))
            except ValueError:
                _once(problems, Problem(
                    "number", name, value[:40],
                    f"{where}: {name} '{value[:40]}' is not a number (the QĐ 4750 appendix "
                    "types it Số).",
                    f"{where}: {name} '{value[:40]}' không phải là số (phụ lục QĐ 4750 quy định "
                    "kiểu Số).",
                ))  # fmt: skip
                continue
            length = len(value) - (value[0] in "+-") - ("." in value or "," in value)
        else:
            length = len(value)
        if size is not None and length > size:
            _once(problems, Problem(
                "field.length", name, value[:40],
                f"{where}: {name} holds {length} characters, over the {size} the QĐ 4750 "
                "appendix allows.",
                f"{where}: {name} dài {length} ký tự, vượt mức tối đa {size} của phụ lục QĐ 4750.",
            ))  # fmt: skip


def _once(problems: list[Problem], new: Problem) -> None:
    if not any(p.element == new.element and p.rule == new.rule for p in problems):
        problems.append(new)


def _person(row: dict[str, str], fac: str, problems: list[Problem]) -> SourceRecord:
    birth = parse_time(row.get("NGAY_SINH"), "NGAY_SINH", problems, allow_partial=True)
    cards = [c for c in (row.get("MA_THE_BHYT") or "").split(";") if c.strip()]
    bhyt = None
    for card in cards:
        bhyt = bhyt or check_identifier("bhyt", card, "MA_THE_BHYT", problems)
    doc = check_document(row.get("SO_CCCD"), "SO_CCCD", problems)
    return SourceRecord(
        source=f"xml130:{fac}",
        record_id=row.get("MA_BN") or row.get("MA_LK") or "",
        full_name=row.get("HO_TEN") or None,
        birth_date=birth[:10] if birth else None,
        sex=sex_code(row.get("GIOI_TINH")) or "U",
        cccd=doc,
        bhyt=bhyt,
        phone=row.get("DIEN_THOAI") or None,
        address=row.get("DIA_CHI") or None,
        commune_code=row.get("MAXA_CU_TRU") or None,
        province_code=row.get("MATINH_CU_TRU") or None,
    )


def _encounter(
    v: _Visit, row: dict[str, str], problems: list[Problem], *, checkin: bool
) -> dict[str, Any]:
    start = parse_time(row.get("NGAY_VAO"), "NGAY_VAO", problems)
    end = None if checkin else parse_time(row.get("NGAY_RA"), "NGAY_RA", problems)
    loai = (row.get("MA_LOAI_KCB") or "").zfill(2) if row.get("MA_LOAI_KCB") else None
    status = "finished" if end else "in-progress"
    body: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": [{"system": f"{ids.MA_LK}/{v.fac}", "value": v.ma_lk}],
        "status": status,
        "class": {"system": ACT, "code": ENCOUNTER_CLASS.get(loai or "", "AMB")},
        "type": [concept(f"{CS}/ma-loai-kcb", loai, LOAI_KCB.get(loai or ""))] if loai else None,
        "period": {"start": start, "end": end},
        "serviceProvider": org_ref(v.fac),
        "reasonCode": [{"text": row["LY_DO_VV"]}] if row.get("LY_DO_VV") else None,
    }
    if not checkin:
        exts = []
        for name in TOTALS:
            val = number(row.get(name), name, problems)
            if val is not None:
                exts.append({"url": name.lower(), "valueDecimal": val})
        if exts:
            body["extension"] = [{"url": f"{SD}/claim-totals", "extension": exts}]
        disposition = None
        if row.get("KET_QUA_DTRI") in DEATH_RESULTS:
            disposition = concept(
                "http://terminology.hl7.org/CodeSystem/discharge-disposition", "exp", "Expired"
            )
        elif row.get("MA_LOAI_RV"):
            disposition = concept(f"{CS}/ma-loai-rv", row["MA_LOAI_RV"])
        body["hospitalization"] = {"dischargeDisposition": disposition}
    return body


def _conditions(
    v: _Visit, row: dict[str, str], when: str | None, problems: list[Problem]
) -> list[Item]:
    items: list[Item] = []
    main = check_icd10(row.get("MA_BENH_CHINH"), "MA_BENH_CHINH", problems)
    extra = check_icd10(row.get("MA_BENH_KT"), "MA_BENH_KT", problems)
    for i, code in enumerate(main[:1] + extra):
        role = "main" if i == 0 and main else f"kt{i}"
        key = v.key("XML1", 1, "Condition", role)
        body = {
            "resourceType": "Condition",
            "clinicalStatus": concept(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"
            ),
            "verificationStatus": concept(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"
            ),
            "category": [
                concept(
                    "http://terminology.hl7.org/CodeSystem/condition-category",
                    "encounter-diagnosis",
                )
            ],
            "code": {
                "coding": [{"system": ICD10, "code": code}],
                "text": (row.get("CHAN_DOAN_RV") or code) if role == "main" else code,
            },
            "encounter": v.enc_ref,
            "recordedDate": when,
        }
        items.append(Item(body, key))
    return items


def _header_observations(v: _Visit, row: dict[str, str], when: str | None) -> list[Item]:
    """Weight (CAN_NANG, kg) and blood group (NHOM_MAU) recorded with the visit."""
    out: list[Item] = []
    base = {"resourceType": "Observation", "status": "final", "encounter": v.enc_ref,
            "effectiveDateTime": when}  # fmt: skip
    p: list[Problem] = []
    kg = number(row.get("CAN_NANG"), "CAN_NANG", p)
    if kg is not None and 0.2 <= kg <= 400 and not p:
        body = {
            **base,
            "category": [concept(f"{OBS_CAT}", "vital-signs")],
            "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
            "valueQuantity": {"value": kg, "unit": "kg", "system": UCUM, "code": "kg"},
        }
        out.append(Item(body, v.key("XML1", 1, "weight")))
    if row.get("NHOM_MAU"):
        body = {
            **base,
            "category": [concept(f"{OBS_CAT}", "laboratory")],
            "code": {"coding": [{"system": LOINC, "code": "882-1", "display": "ABO and Rh group"}]},
            "valueString": row["NHOM_MAU"],
        }
        out.append(Item(body, v.key("XML1", 1, "blood-group")))
    return out


def _diagnosis_refs(items: list[Item]) -> list[dict[str, Any]]:
    out = []
    for rank, item in enumerate(items, 1):
        out.append(
            {
                "condition": {
                    "reference": f"Condition/{id_for_source_key('Condition', item.source_key)}"
                },
                "use": concept(
                    "http://terminology.hl7.org/CodeSystem/diagnosis-role",
                    "DD" if rank == 1 else "CM",
                ),
                "rank": rank,
            }
        )
    return out


def _medication(v: _Visit, row: dict[str, str], p: list[Problem]) -> list[Item]:
    authored = parse_time(row.get("NGAY_YL"), "NGAY_YL", p)
    qty = number(row.get("SO_LUONG"), "SO_LUONG", p)
    medication = concept(f"{CS}/thuoc", row.get("MA_THUOC"), row.get("TEN_THUOC"))
    quantity = {"value": qty, "unit": row.get("DON_VI_TINH") or None} if qty is not None else None
    dose_text = " ".join(x for x in (row.get("LIEU_DUNG"), row.get("CACH_DUNG")) if x)
    body = {
        "resourceType": "MedicationRequest",
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": medication,
        "encounter": v.enc_ref,
        "authoredOn": authored,
        "dosageInstruction": [
            {
                "text": dose_text or None,
                "route": concept(f"{CS}/duong-dung", row["DUONG_DUNG"])
                if row.get("DUONG_DUNG")
                else None,
            }
        ],
        "dispenseRequest": {"quantity": quantity},
        "note": [{"text": f"Hàm lượng: {row['HAM_LUONG']}"}] if row.get("HAM_LUONG") else None,
    }
    key = v.key("XML2", row.get("STT") or "")
    # An XML2 line is a drug actually issued (it is billed): the dispense, for the prescription.
    handed = parse_time(row.get("NGAY_TH_YL"), "NGAY_TH_YL", p) or authored
    dispense = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": medication,
        "context": v.enc_ref,
        "authorizingPrescription": [v.ref("MedicationRequest", key)],
        "quantity": quantity,
        "whenHandedOver": handed,
        "dosageInstruction": [{"text": dose_text or None}],
    }
    return [Item(body, key), Item(dispense, f"{key}|dispense")]


def _procedure(v: _Visit, row: dict[str, str], p: list[Problem]) -> list[Item]:
    when = parse_time(row.get("NGAY_TH_YL") or row.get("NGAY_YL"), "NGAY_TH_YL", p)
    if row.get("MA_DICH_VU"):
        code = concept(f"{CS}/dich-vu-ky-thuat", row["MA_DICH_VU"], row.get("TEN_DICH_VU"))
    else:
        code = concept(f"{CS}/vat-tu-y-te", row.get("MA_VAT_TU"), row.get("TEN_VAT_TU"))
    if row.get("MA_BENH"):
        check_icd10(row.get("MA_BENH"), "MA_BENH", p)
    body = {
        "resourceType": "Procedure",
        "status": "completed",
        "category": concept(f"{CS}/ma-nhom", row.get("MA_NHOM")) if row.get("MA_NHOM") else None,
        "code": code,
        "encounter": v.enc_ref,
        "performedDateTime": when,
    }
    return [Item(body, v.key("XML3", row.get("STT") or ""))]


def _lab(v: _Visit, row: dict[str, str], p: list[Problem]) -> list[Item]:
    when = parse_time(row.get("NGAY_KQ"), "NGAY_KQ", p)
    value = row.get("GIA_TRI") or ""
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            concept("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
        ],
        "code": concept(
            f"{CS}/chi-so-cls", row.get("MA_CHI_SO") or row.get("MA_DICH_VU"), row.get("TEN_CHI_SO")
        ),
        "encounter": v.enc_ref,
        "effectiveDateTime": when,
        "note": [{"text": t} for t in (row.get("MO_TA"), row.get("KET_LUAN")) if t],
    }
    try:
        num = float(value)
        ok_num = num == num and abs(num) < 1e15
    except ValueError:
        ok_num = False
    if ok_num:
        q: dict[str, Any] = {"value": int(num) if num.is_integer() else num}
        if row.get("DON_VI_DO"):
            q["unit"] = row["DON_VI_DO"]
        body["valueQuantity"] = q
    elif value:
        body["valueString"] = value
    return [Item(body, v.key("XML4", row.get("STT") or ""))]


def _reports(v: _Visit, labs: list[tuple[dict[str, str], Item]]) -> list[Item]:
    """One DiagnosticReport per service (MA_DICH_VU) grouping its result lines."""
    groups: dict[str, list[tuple[dict[str, str], Item]]] = {}
    for row, item in labs:
        groups.setdefault(row.get("MA_DICH_VU") or "?", []).append((row, item))
    out = []
    for service, members in groups.items():
        first = members[0][0]
        conclusion = "; ".join(
            dict.fromkeys(r["KET_LUAN"] for r, _ in members if r.get("KET_LUAN"))
        )
        when = members[0][1].body.get("effectiveDateTime")
        body = {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": concept(
                f"{CS}/dich-vu-ky-thuat",
                service if service != "?" else None,
                first.get("TEN_CHI_SO") if service == "?" else None,
            ),
            "encounter": v.enc_ref,
            "effectiveDateTime": when,
            "issued": instant(when),
            "result": [v.ref("Observation", item.source_key) for _, item in members],
            "conclusion": conclusion or None,
        }
        out.append(Item(body, v.key("XML4", "report", service)))
    return out


def _note(v: _Visit, row: dict[str, str], p: list[Problem]) -> list[Item]:
    when = parse_time(row.get("THOI_DIEM_DBLS"), "THOI_DIEM_DBLS", p)
    notes = [
        f"{label}: {row[name]}"
        for name, label in (
            ("GIAI_DOAN_BENH", "Giai đoạn bệnh"),
            ("HOI_CHAN", "Hội chẩn"),
            ("PHAU_THUAT", "Phẫu thuật"),
        )
        if row.get(name)
    ]
    body = {
        "resourceType": "Observation",
        "status": "final",
        "category": [concept("http://terminology.hl7.org/CodeSystem/observation-category", "exam")],
        "code": concept(f"{CS}/hssk-observation", "dien-bien-lam-sang", "Diễn biến lâm sàng"),
        "encounter": v.enc_ref,
        "effectiveDateTime": when,
        "valueString": row.get("DIEN_BIEN_LS") or None,
        "note": [{"text": t} for t in notes],
    }
    return [Item(body, v.key("XML5", row.get("STT") or ""))]


def _hiv(v: _Visit, row: dict[str, str], p: list[Problem], line: int) -> list[Item]:
    when = parse_time(row.get("NGAYKD_HIV"), "NGAYKD_HIV", p)
    summary = "; ".join(f"{k}={val}" for k, val in row.items() if val and k not in ("MA_LK",))
    switched = parse_time(row.get("NGAY_CHUYEN_PHAC_DO"), "NGAY_CHUYEN_PHAC_DO", p)
    days = number(row.get("SO_NGAY_CAP_THUOC_ARV"), "SO_NGAY_CAP_THUOC_ARV", p)
    # the current regimen (the appendix's tail of XML6), as components a reader can use
    regimen: list[tuple[str, str, dict[str, Any]]] = [
        ("ma-phac-do-dieu-tri", "Phác đồ điều trị hiện tại", {"valueString": row.get("MA_PHAC_DO_DIEU_TRI")}),
        ("ma-bac-phac-do", "Bậc phác đồ", {"valueString": row.get("MA_BAC_PHAC_DO")}),
        ("so-ngay-cap-thuoc-arv", "Số ngày cấp thuốc ARV",
         {"valueQuantity": {"value": days, "unit": "ngày", "system": UCUM, "code": "d"}}
         if days is not None else {}),
        ("ngay-chuyen-phac-do", "Ngày chuyển phác đồ", {"valueDateTime": switched}),
        ("ly-do-chuyen-phac-do", "Lý do chuyển phác đồ", {"valueString": row.get("LY_DO_CHUYEN_PHAC_DO")}),
    ]  # fmt: skip
    components = [
        {"code": concept(f"{CS}/hiv-arv", code, label), **value}
        for code, label, value in regimen
        if next(iter(value.values()), None)
    ]
    body = {
        "resourceType": "Observation",
        "meta": {"security": [HIV_LABEL]},
        "status": "final",
        "code": {
            "coding": [
                {"system": f"{CS}/hssk-observation", "code": "hiv-care-record"},
                # the ICD-10 class makes every reader's sensitive-category filter see it
                {"system": ICD10, "code": "B24", "display": "Unspecified HIV disease"},
            ],
            "text": "Hồ sơ chăm sóc và điều trị HIV/AIDS",
        },
        "encounter": v.enc_ref,
        "effectiveDateTime": when,
        "valueString": summary[:10000] or None,
        "component": components,
    }
    return [Item(body, v.key("XML6", line), sensitivity="HIV")]


def _document(
    v: _Visit,
    table: str,
    row: dict[str, str],
    raw: bytes | None,
    p: list[Problem],
    line: int,
    who: str = "main",
) -> Item:
    code, title = DOCS[table]
    issued = parse_time(row.get("NGAY_CT"), "NGAY_CT", p) or parse_time(
        row.get("NGAY_RA"), "NGAY_RA", p
    )
    body = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": concept(f"{CS}/loai-giay-to", code, title),
        "date": instant(issued),
        "description": row.get("CHAN_DOAN_RV") or None,
        "custodian": org_ref(v.fac),
        "content": [
            {
                "attachment": {
                    "contentType": "application/xml",
                    "title": title,
                    "data": base64.b64encode(raw).decode() if raw else None,
                }
            }
        ],
        "context": {"encounter": [v.enc_ref]},
    }
    if table in STRUCTURED_DOCS:
        _certificate(body, row, p)
    return Item(body, v.key(table, line), who=who)


def _certificate(body: dict[str, Any], row: dict[str, str], p: list[Problem]) -> None:
    """A leave certificate's fields kept as data: its numbers, the period of leave, the
    doctor, and every field of the table (extension ``xml130-fields``, in the table's order)."""
    body["identifier"] = [
        {"system": f"{CS}/{system}", "value": row[name]}
        for name, system in (("SO_SERI", "so-seri"), ("SO_CT", "so-chung-tu"), ("SO_KCB", "so-kcb"))
        if row.get(name)
    ]
    start = parse_time(row.get("TU_NGAY"), "TU_NGAY", p, allow_future_days=3650)
    end = parse_time(row.get("DEN_NGAY"), "DEN_NGAY", p, allow_future_days=3650)
    body["context"]["period"] = {"start": start, "end": end}
    if row.get("MA_BS"):
        body["authenticator"] = {
            "identifier": {"system": f"{CS}/ma-bac-si", "value": row["MA_BS"]},
            "display": row.get("TEN_BS") or None,
        }
    body["extension"] = [
        {
            "url": f"{SD}/xml130-fields",
            "extension": [
                {"url": name, "valueString": value}
                for name, value in row.items()
                if value and name != "MA_LK"
            ],
        }
    ]


# The treatment summary's sections (XML8 → Composition): LOINC section codes the catalogs read
# (tt.benh_su, tt.dien_bien, tt.cls_co_gia_tri, tt.phuong_phap_dieu_tri, tt.loi_dan).
SUMMARY_SECTIONS = (
    ("history", "10164-2", "Lý do vào viện và chẩn đoán vào viện"),
    ("course", "8648-8", "Quá trình bệnh lý và diễn biến lâm sàng"),
    ("results", "30954-2", "Tóm tắt kết quả cận lâm sàng có giá trị"),
    ("treatment", "18776-5", "Phương pháp điều trị"),
    ("outcome", "11535-2", "Tình trạng người bệnh ra viện"),
    ("advice", "69730-0", "Ghi chú, lời dặn"),
)


def _summary(
    v: _Visit, row: dict[str, str], header: dict[str, str] | None, p: list[Problem]
) -> Item:
    """XML8 (tóm tắt hồ sơ bệnh án) as a treatment summary: a Composition with the sections
    the book and the catalogs read, linked to its visit."""
    start = parse_time(row.get("NGAY_VAO"), "NGAY_VAO", p)
    end = parse_time(row.get("NGAY_RA"), "NGAY_RA", p)
    issued = parse_time(row.get("NGAY_CT"), "NGAY_CT", p) or end or start
    births = [
        f"{label}: {row[name]}"
        for name, label in (
            ("NGAY_SINHCON", "Ngày sinh con"),
            ("NGAY_CONCHET", "Ngày con chết"),
            ("SO_CONCHET", "Số con chết"),
        )
        if row.get(name)
    ]
    result = KET_QUA_DTRI.get(row.get("KET_QUA_DTRI") or "", row.get("KET_QUA_DTRI") or "")
    texts = {
        "history": [
            f"Lý do vào viện: {header['LY_DO_VV']}" if header and header.get("LY_DO_VV") else "",
            f"Chẩn đoán vào viện: {row['CHAN_DOAN_VAO']}" if row.get("CHAN_DOAN_VAO") else "",
        ],
        "course": [row.get("QT_BENHLY") or ""],
        "results": [row.get("TOMTAT_KQ") or ""],
        "treatment": [row.get("PP_DIEUTRI") or ""],
        "outcome": [
            f"Chẩn đoán ra viện: {row['CHAN_DOAN_RV']}" if row.get("CHAN_DOAN_RV") else "",
            f"Kết quả điều trị: {result}" if result else "",
            *births,
        ],
        "advice": [row.get("GHI_CHU") or ""],
    }
    sections = []
    for key, code, title in SUMMARY_SECTIONS:
        text = ". ".join(t for t in texts[key] if t)
        if not text:
            continue
        sections.append(
            {
                "title": title,
                "code": {"coding": [{"system": LOINC, "code": code}], "text": title},
                "text": {
                    "status": "generated",
                    "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(text)}</div>',
                },
            }
        )
    title = DOCS["XML8"][1]
    body = {
        "resourceType": "Composition",
        "status": "final",
        "type": {
            "coding": [
                {"system": LOINC, "code": "34133-9", "display": "Summary of episode note"},
                {"system": f"{CS}/loai-giay-to", "code": DOCS["XML8"][0], "display": title},
            ],
            "text": title,
        },
        "encounter": v.enc_ref,
        "date": instant(issued),
        "author": [org_ref(v.fac)],
        "title": title,
        "custodian": org_ref(v.fac),
        "event": [{"period": {"start": start, "end": end}}],
        "section": sections,
    }
    return Item(body, v.key("XML8", 1, "summary"))


def _newborn(fac: str, row: dict[str, str], p: list[Problem], n: int) -> SourceRecord:
    birth = parse_time(row.get("NGAY_SINH_CON"), "NGAY_SINH_CON", p)
    return SourceRecord(
        source=f"xml130:{fac}:gcs",
        record_id=f"{row.get('MA_LK')}|{row.get('SO') or n}",
        full_name=row.get("HO_TEN_CON") or None,
        birth_date=birth[:10] if birth else None,
        sex=sex_code(row.get("GIOI_TINH_CON")) or "U",
        temp_card=row.get("MA_THE_TAM") or None,
        commune_code=row.get("MAXA_CU_TRU") or None,
        province_code=row.get("MATINH_CU_TRU") or None,
    )


def _mother(fac: str, row: dict[str, str], p: list[Problem]) -> SourceRecord:
    birth = parse_time(row.get("NGAYSINH_NND"), "NGAYSINH_NND", p, allow_partial=True)
    return SourceRecord(
        source=f"xml130:{fac}:nnd",
        record_id=row.get("MA_LK") or "",
        full_name=row.get("HO_TEN_NND") or None,
        birth_date=birth[:10] if birth else None,
        sex="F",
        cccd=check_document(row.get("SO_CCCD_NND"), "SO_CCCD_NND", p),
        bhxh=check_identifier("bhxh", row.get("MA_BHXH_NND"), "MA_BHXH_NND", p),
        bhyt=check_identifier("bhyt", row.get("MA_THE_NND"), "MA_THE_NND", p),
        address=row.get("NOI_CU_TRU_NND") or None,
        commune_code=row.get("MAXA_CU_TRU") or None,
        province_code=row.get("MATINH_CU_TRU") or None,
    )


def _referral(v: _Visit, row: dict[str, str], p: list[Problem], raw: bytes | None) -> list[Item]:
    when = parse_time(row.get("NGAY_RA"), "NGAY_RA", p) or parse_time(
        row.get("NGAY_VAO"), "NGAY_VAO", p
    )
    reasons = check_icd10(row.get("MA_BENH_CHINH"), "MA_BENH_CHINH", p)
    src = check_facility(row.get("MA_NOI_DI") or v.fac, "MA_NOI_DI", None, p)
    dst = check_facility(row.get("MA_NOI_DEN"), "MA_NOI_DEN", None, p)
    doc = _document(v, "XML13", row, raw, p, 1)
    body = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": f"{CS}/so-chuyen-tuyen", "value": row["SO_CHUYENTUYEN"]}]
        if row.get("SO_CHUYENTUYEN")
        else None,
        "status": "active",
        "intent": "order",
        "category": [concept("http://snomed.info/sct", "3457005", "Patient referral")],
        "code": concept(f"{CS}/ma-lydo-ct", row.get("MA_LYDO_CT"), row.get("HUONG_DIEU_TRI"))
        if row.get("MA_LYDO_CT")
        else None,
        "encounter": v.enc_ref,
        "authoredOn": when,
        "requester": org_ref(src),
        "performer": [org_ref(dst)] if dst else None,
        "reasonCode": [
            {"coding": [{"system": ICD10, "code": c}], "text": row.get("CHAN_DOAN_RV") or c}
            for c in reasons[:1]
        ],
        "supportingInfo": [v.ref("DocumentReference", doc.source_key)],
        "note": [
            {"text": t}
            for t in (row.get("DAU_HIEU_LS"), row.get("TOMTAT_KQ"), row.get("TINH_TRANG_CT"))
            if t
        ],
    }
    return [Item(body, v.key("XML13", 1, "referral")), doc]


def _appointment(v: _Visit, row: dict[str, str], p: list[Problem]) -> list[Item]:
    start = parse_time(row.get("NGAY_HEN_KL"), "NGAY_HEN_KL", p, allow_future_days=3650)
    reasons = check_icd10(row.get("MA_BENH_CHINH"), "MA_BENH_CHINH", p)
    body = {
        "resourceType": "Appointment",
        "identifier": [{"system": f"{CS}/so-giay-hen", "value": row["SO_GIAYHEN_KL"]}]
        if row.get("SO_GIAYHEN_KL")
        else None,
        "status": "booked",
        "serviceType": [concept(f"{CS}/loai-hen", "tai-kham", "Tái khám")],
        "reasonCode": [
            {"coding": [{"system": ICD10, "code": c}], "text": row.get("CHAN_DOAN_RV") or c}
            for c in reasons[:1]
        ],
        "description": f"Hẹn khám lại tại cơ sở {v.fac}",
        "start": instant(start),
        "end": instant(start),
        "participant": [],
    }
    return [Item(body, v.key("XML14", 1))]


def _tb(v: _Visit, row: dict[str, str], p: list[Problem], line: int) -> list[Item]:
    start = parse_time(row.get("NGAYBD_DTRI_LAO"), "NGAYBD_DTRI_LAO", p)
    end = parse_time(row.get("NGAYKT_DTRI_LAO"), "NGAYKT_DTRI_LAO", p)
    notes = [
        f"{k}: {row[k]}"
        for k in (
            "PHANLOAI_LAO_VITRI",
            "PHANLOAI_LAO_TS",
            "PHANLOAI_LAO_HIV",
            "PHANLOAI_LAO_VK",
            "LOAI_DTRI_LAO",
            "PHACDO_DTRI_LAO",
            "KET_QUA_DTRI_LAO",
        )
        if row.get(k)
    ]
    body = {
        "resourceType": "Condition",
        "clinicalStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "resolved" if end else "active",
        ),
        "category": [
            concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")
        ],
        "code": concept(f"{CS}/hssk-condition", "lao", "Bệnh lao (điều trị)"),
        "encounter": v.enc_ref,
        "onsetDateTime": start,
        "abatementDateTime": end,
        "note": [{"text": t} for t in notes],
    }
    return [Item(body, v.key("XML15", row.get("STT") or line))]


def _row_raw(fac: str, table: str, row: dict[str, str]) -> str:
    hoso = HoSo(index=0, facility=fac, raw={table: build_table(table, [row])})
    return raw_document(hoso)


def map_hoso(hoso: HoSo, file: str = "", known: frozenset[str] | None = None) -> Unit:
    """Map one hồ sơ. ``known``: registered facility codes (None = do not check)."""
    unit = _map_hoso(hoso, file, known)
    unit.warnings = [
        Problem(w.rule, loai, None, f"{loai}: {w.reason}", f"{loai}: {w.vi}")
        for loai, w in hoso.warnings
    ]
    if hoso.renamed:
        _name_fields_as_sent(unit, hoso.renamed)
    if unit.problems or not (hoso.tables.get("XML1") or hoso.tables.get("XML0")):
        unit.raw = raw_document(hoso)  # kept for the quarantine only (costly to build)
    elif not unit.row_problems and not unit.only_new:
        h = hashlib.blake2b(unit.facility.encode() if unit.facility else b"", digest_size=20)
        for name in sorted(hoso.raw):
            h.update(name.encode())
            h.update(hoso.raw[name])
        unit.digest = h.hexdigest()
    return unit


def _name_fields_as_sent(unit: Unit, renamed: dict[str, str]) -> None:
    """A problem in a field the file names otherwise (QĐ 4210 MA_BENH for MA_BENH_CHINH, 3176
    MA_CSKCB_DEN for MA_NOI_DEN) also says the file's name: that is what the sender fixes."""
    for p in [*unit.problems, *(p for p, _ in unit.row_problems)]:
        sent = renamed.get(p.element or "")
        if sent:
            p.reason += f" (in this file: {sent})"
            p.vi += f" (trong tệp: {sent})"


def _map_hoso(hoso: HoSo, file: str, known: frozenset[str] | None) -> Unit:
    fac_problems: list[Problem] = []
    tabs = hoso.tables
    header_rows = tabs.get("XML1") or tabs.get("XML0") or []
    header = header_rows[0] if header_rows else None
    checkin = not tabs.get("XML1") and bool(tabs.get("XML0"))
    any_row = header or next((rows[0] for rows in tabs.values() if rows), {})
    ma_lk = (any_row or {}).get("MA_LK", "")
    fac = (header or {}).get("MA_CSKCB") or hoso.facility
    unit = Unit(key=f"{fac}|{ma_lk}", file=file, kind="xml130", facility=fac)
    for loai, err in hoso.errors:
        unit.problems.append(
            Problem(err.rule, loai, None, f"{loai}: {err.reason}", f"{loai}: {err.vi}")
        )
    if not ma_lk:
        unit.problems.append(
            Problem(
                "required",
                "MA_LK",
                None,
                "the hồ sơ has no MA_LK (visit key).",
                "hồ sơ không có MA_LK.",
            )
        )
    if hoso.facility and fac and hoso.facility != fac:
        unit.problems.append(
            Problem(
                "facility.mismatch",
                "MA_CSKCB",
                fac,
                f"MA_CSKCB {fac} differs from the envelope's MACSKCB {hoso.facility}.",
                f"MA_CSKCB {fac} khác MACSKCB {hoso.facility} của tệp.",
            )
        )
    check_facility(fac, "MA_CSKCB", known, fac_problems)
    unit.problems += fac_problems
    if unit.problems:
        return unit
    v = _Visit(fac, ma_lk)
    if header is not None:
        p: list[Problem] = []
        where = "XML0" if checkin else "XML1"
        require(
            header,
            ("MA_LK", "HO_TEN", "NGAY_SINH", "GIOI_TINH", "NGAY_VAO", "MA_LOAI_KCB"),
            where,
            p,
        )
        if not checkin:
            require(header, ("MA_BENH_CHINH",), where, p)
        unit.person = _person(header, fac, p)
        enc = _encounter(v, header, p, checkin=checkin)
        conds = (
            []
            if checkin
            else _conditions(v, header, enc["period"].get("end") or enc["period"].get("start"), p)
        )
        if conds:
            enc["diagnosis"] = _diagnosis_refs(conds)
        check_layout(where, header, where, p)
        if p:
            unit.problems += p
            return unit
        unit.items.append(Item(enc, v.enc_key))
        unit.only_new = checkin  # a check-in never reopens a visit already on record
        unit.items += conds
        if not checkin:
            unit.items += _header_observations(v, header, enc["period"].get("start"))
        unit.visit_date = (enc["period"].get("start") or "")[:10] or None
        if header.get("KET_QUA_DTRI") in DEATH_RESULTS:
            unit.deceased_at = enc["period"].get("end") or enc["period"].get("start")
    _details(unit, v, hoso)
    for it in unit.items:
        it.body = clean_body(it.body)
    return unit


_LINE_MAPPERS = {"XML2": _medication, "XML3": _procedure, "XML4": _lab, "XML5": _note}


def _details(unit: Unit, v: _Visit, hoso: HoSo) -> None:
    labs: list[tuple[dict[str, str], Item]] = []
    for table, rows in hoso.tables.items():
        if table in ("XML0", "XML1"):
            continue
        seen: set[str] = set()
        for line, row in enumerate(rows, 1):
            p: list[Problem] = []
            if row.get("MA_LK") and row["MA_LK"] != v.ma_lk:
                p.append(
                    Problem(
                        "ma_lk.mismatch",
                        "MA_LK",
                        row["MA_LK"],
                        f"{table} line {line}: MA_LK {row['MA_LK']} differs from the visit's {v.ma_lk}.",
                        f"{table} dòng {line}: MA_LK {row['MA_LK']} khác MA_LK của lượt khám {v.ma_lk}.",
                    )
                )
            stt = row.get("STT")
            if table in _LINE_MAPPERS or table in ("XML6", "XML15"):
                if table in _LINE_MAPPERS:
                    require(row, ("STT",), f"{table} line {line}", p)
                if stt and stt in seen:
                    p.append(
                        Problem(
                            "duplicate-key",
                            "STT",
                            stt,
                            f"{table}: key MA_LK={v.ma_lk} STT={stt} appears twice in the file.",
                            f"{table}: khóa MA_LK={v.ma_lk} STT={stt} bị trùng trong tệp.",
                        )
                    )
                if stt:
                    seen.add(stt)
            items = _map_line(unit, v, table, row, line, hoso, p)
            check_layout(table, row, f"{table} line {line}", p)
            if p:
                unit.row_problems.append((p[0], _row_raw(v.fac, table, row)))
                continue
            if table == "XML4":
                labs.append((row, items[0]))
            unit.items += items
    if labs and (unit.person is not None or unit.person_id is not None):
        # only with the whole visit: a replayed single line must not shrink the report
        unit.items += _reports(v, labs)


def _map_line(
    unit: Unit, v: _Visit, table: str, row: dict[str, str], line: int, hoso: HoSo, p: list[Problem]
) -> list[Item]:
    if table in _LINE_MAPPERS:
        return _LINE_MAPPERS[table](v, row, p)
    raw = None
    if table in DOCS:  # the paper itself, kept as the document's content
        one = len(hoso.tables.get(table) or ()) == 1 and table in hoso.raw
        raw = hoso.raw[table] if one else build_table(table, [row])
    if table == "XML6":
        return _hiv(v, row, p, line)
    if table == "XML8":
        header = next(iter(hoso.tables.get("XML1") or ()), None)
        return [_document(v, table, row, raw, p, line), _summary(v, row, header, p)]
    if table == "XML15":
        return _tb(v, row, p, line)
    if table == "XML13":
        return _referral(v, row, p, raw)
    if table == "XML14":
        return _appointment(v, row, p)
    if table == "XML9":
        require(row, ("HO_TEN_NND", "NGAY_SINH_CON", "GIOI_TINH_CON"), f"XML9 line {line}", p)
        if unit.person is None and unit.person_id is None:
            unit.person = _mother(v.fac, row, p)
        baby = _newborn(v.fac, row, p, line)
        unit.newborns.append(baby)
        who = f"newborn:{len(unit.newborns) - 1}"
        doc = _document(v, "XML9", row, raw, p, line, who=who)
        if p:
            unit.newborns.pop()
        return [doc]
    if table in DOCS:
        return [_document(v, table, row, raw, p, line)]
    return []


def table_names() -> list[str]:
    return list(tables())


GENDER_OF = GENDER
