"""A visit HSSK holds, written as a QĐ 130 hồ sơ: XML1 (tổng hợp) and XML8 (tóm tắt hồ sơ
bệnh án), the two tables QĐ 2733 and CV 4395/BYT-KCB ask of every visit, with or without
insurance, so the insurance gateway can feed the health book in VNeID.

The inverse of the ingest mapping (``ingest.map_xml130``): a visit read from a hồ sơ writes
back the same rows, and the rows written here read back into the same visit. Fields come
from the person's golden record (the Patient of ``catalog.bundle``) and from the visit's own
resources; the inner files and the envelope are laid out by the ingest side's writers, in the
order and with the fields of the QĐ 4750 appendix (``ingest.xml130_tables``).

A commune station's check-up carries no ICD-10 code when nothing was found: it is sent with
the code of its kind of examination (Z00.0 general check-up, Z10.8 school pupils, Z13.9
screening), as HIS software does for health checks.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from hssk.ingest.map_xml130 import DOCS, TOTALS
from hssk.ingest.model import CS, SD
from hssk.ingest.station_map import CHECKUP_KINDS, CHECKUP_SYSTEM
from hssk.ingest.xml130_tables import tables
from hssk.ingest.xmlparse import XmlError, build_envelope, build_table, parse_table
from hssk.kernel import clock
from hssk.kernel import identifiers as ids
from hssk.kernel.codes import ICD10, LOINC

# ICD-10 code of a check-up that found nothing, by kind (Encounter.type of station entries).
CHECKUP_ICD = {"ksk-dinh-ky": "Z00.0", "ksk-hoc-duong": "Z10.8", "sang-loc": "Z13.9"}
# Required to send a visit at all (the ingest side refuses a hồ sơ without them).
REQUIRED = ("MA_LK", "HO_TEN", "NGAY_SINH", "GIOI_TINH", "NGAY_VAO", "MA_LOAI_KCB",
            "MA_BENH_CHINH", "MA_CSKCB")  # fmt: skip
_SEX = {"male": "1", "female": "2"}


class ExportError(ValueError):
    """The visit cannot be written as a hồ sơ; ``vi`` and ``en`` say what is missing."""

    def __init__(self, vi: str, en: str):
        self.vi, self.en = vi, en
        super().__init__(f"{vi} / {en}")


@dataclass
class Visit:
    """One visit of a person: the Encounter, the golden-record Patient and the resources of
    the visit (those that name the Encounter)."""

    encounter: dict[str, Any]
    patient: dict[str, Any]
    related: list[dict[str, Any]]

    @property
    def ref(self) -> str:
        return f"Encounter/{self.encounter.get('id')}"


def visit_of(bundle: dict[str, Any], encounter_id: str) -> Visit | None:
    """The visit ``encounter_id`` within a person's Bundle (``catalog.bundle.bundles``)."""
    entries = [e["resource"] for e in bundle.get("entry", [])]
    patient = entries[0] if entries and entries[0].get("resourceType") == "Patient" else {}
    enc = next(
        (
            r
            for r in entries
            if r.get("resourceType") == "Encounter" and r.get("id") == encounter_id
        ),
        None,
    )
    if enc is None:
        return None
    ref = f"Encounter/{encounter_id}"
    related = [r for r in entries if r is not enc and ref in _encounter_refs(r)]
    by_id = {(r.get("resourceType"), r.get("id")): r for r in entries}
    # diagnoses the Encounter lists (their Conditions name the visit too, but in rank order)
    for d in enc.get("diagnosis") or ():
        rtype, _, rid = str((d.get("condition") or {}).get("reference", "")).partition("/")
        cond = by_id.get((rtype, rid))
        if cond is not None and cond not in related:
            related.append(cond)
    return Visit(enc, patient, related)


def _encounter_refs(r: dict[str, Any]) -> list[str]:
    out = []
    for key in ("encounter", "context"):
        v = r.get(key)
        if isinstance(v, dict):
            if "reference" in v:
                out.append(str(v["reference"]))
            out += [
                str(e.get("reference")) for e in v.get("encounter") or () if isinstance(e, dict)
            ]
    return out


# --- values ---------------------------------------------------------------------------------


def timestamp(value: str | None) -> str:
    """FHIR date/dateTime → QĐ 130 ``yyyymmddHHMM`` in Vietnam time (a date: ``0000``)."""
    if not value:
        return ""
    if "T" not in value:
        digits = value.replace("-", "")
        return digits.ljust(8, "0") + "0000"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = clock.to_vn(moment)
    return moment.strftime("%Y%m%d%H%M")


def number(value: Any) -> str:
    if value is None or value == "":
        return ""
    f = float(value)
    return str(int(f)) if f.is_integer() else repr(f)


def _clean(value: Any) -> str:
    """A field value the inner file can hold: stripped, without the CDATA terminator."""
    return str(value or "").replace("]]>", "]] >").strip()


def _coding(concept: Any, system: str) -> str:
    for c in (concept or {}).get("coding") or () if isinstance(concept, dict) else ():
        if c.get("system") == system and c.get("code"):
            return str(c["code"])
    return ""


def _ident(resource: dict[str, Any], system: str) -> str:
    for i in resource.get("identifier") or ():
        if i.get("system") == system and i.get("value"):
            return str(i["value"])
    return ""


def _text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    return next((str(c["display"]) for c in concept.get("coding") or () if c.get("display")), "")


def ma_lk(encounter: dict[str, Any]) -> str:
    """The visit key: the hồ sơ's own MA_LK when the visit came as one, else one made from
    the Encounter's id (stable: a re-send carries the same key)."""
    for i in encounter.get("identifier") or ():
        if str(i.get("system", "")).startswith(ids.MA_LK + "/") and i.get("value"):
            return str(i["value"])
    return "HSSK" + str(encounter.get("id", "")).replace("-", "")


def facility(encounter: dict[str, Any]) -> str:
    prov = encounter.get("serviceProvider") or {}
    ident = prov.get("identifier") or {}
    return str(ident.get("value") or "") if ident.get("system") == ids.FACILITY else ""


def checkup_kind(encounter: dict[str, Any]) -> str | None:
    """The station check-up kind (``ksk-dinh-ky``, ...) of an Encounter, if it is one."""
    for t in encounter.get("type") or ():
        code = _coding(t, CHECKUP_SYSTEM)
        if code in CHECKUP_KINDS:
            return code
    return None


def _diagnoses(v: Visit) -> tuple[list[tuple[str, str]], bool]:
    """[(ICD-10 code, text)] main first, and whether they came from the Encounter's reason
    (a station entry) rather than from its Conditions."""
    enc = v.encounter
    conds = {c.get("id"): c for c in v.related if c.get("resourceType") == "Condition"}
    ranked = sorted(enc.get("diagnosis") or (), key=lambda d: d.get("rank") or 99)
    out = []
    for d in ranked:
        cond = conds.get(str((d.get("condition") or {}).get("reference", "")).partition("/")[2])
        code = _coding((cond or {}).get("code"), ICD10)
        if code:
            out.append((code, _text(cond.get("code")) if cond else code))
    if out:
        return out, False
    for reason in enc.get("reasonCode") or ():
        code = _coding(reason, ICD10)
        if code:
            return [(code, _text(reason) or code)], True
    kind = checkup_kind(enc)
    if kind:
        conclusion = next((_text(r) for r in enc.get("reasonCode") or () if _text(r)), "")
        return [(CHECKUP_ICD[kind], conclusion or CHECKUP_KINDS[kind])], True
    return [], False


def _observations(v: Visit) -> list[dict[str, Any]]:
    return [r for r in v.related if r.get("resourceType") == "Observation"]


def _obs_code(obs: dict[str, Any]) -> str:
    return _coding(obs.get("code"), LOINC)


def _quantity_text(q: dict[str, Any]) -> str:
    return f"{number(q.get('value'))} {q.get('unit') or ''}".strip()


def _results(v: Visit) -> str:
    """The visit's measurements and results, one phrase each (XML8 TOMTAT_KQ)."""
    parts = []
    for obs in _observations(v):
        label = _text(obs.get("code")) or _obs_code(obs)
        if "valueQuantity" in obs:
            parts.append(f"{label}: {_quantity_text(obs['valueQuantity'])}")
        elif obs.get("valueString"):
            parts.append(f"{label}: {obs['valueString']}")
        elif obs.get("component"):
            values = [number((c.get("valueQuantity") or {}).get("value")) for c in obs["component"]]
            unit = ((obs["component"][0].get("valueQuantity") or {}).get("unit")) or ""
            parts.append(f"{label}: {'/'.join(values)} {unit}".strip())
    return "; ".join(parts)


def _weight(v: Visit) -> str:
    for obs in _observations(v):
        if _obs_code(obs) == "29463-7" and "valueQuantity" in obs:
            return f"{float(obs['valueQuantity']['value']):.2f}"
    return ""


def _blood_group(v: Visit) -> str:
    for obs in _observations(v):
        if _obs_code(obs) == "882-1" and obs.get("valueString"):
            return str(obs["valueString"])
    return ""


def _totals(enc: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for ext in enc.get("extension") or ():
        if ext.get("url") == f"{SD}/claim-totals":
            for e in ext.get("extension") or ():
                found[str(e.get("url", "")).upper()] = number(e.get("valueDecimal"))
    return {name: found.get(name, "0") for name in TOTALS}


def _loai_kcb(enc: dict[str, Any]) -> str:
    for t in enc.get("type") or ():
        code = _coding(t, f"{CS}/ma-loai-kcb")
        if code:
            return code
    return "03" if (enc.get("class") or {}).get("code") == "IMP" else "01"


def vn_day(value: str) -> date:
    """The Vietnam calendar day of a FHIR date or dateTime (an instant stored in UTC at 18:30
    is the next morning in Vietnam)."""
    digits = timestamp(value)[:8]
    return date(int(digits[:4]), int(digits[4:6] or 1) or 1, int(digits[6:8] or 1) or 1)


def _days(loai: str, start: str, end: str) -> str:
    if loai in ("01", "07", "09") or not (start and end):
        return "0"
    return str((vn_day(end) - vn_day(start)).days + 1)


def _birth(patient: dict[str, Any]) -> str:
    birth = str(patient.get("birthDate") or "")
    return timestamp(birth) if birth else ""


def _address(patient: dict[str, Any]) -> tuple[str, str, str]:
    addr = (patient.get("address") or [{}])[0]
    commune = next(
        (str(e.get("valueString")) for e in addr.get("extension") or ()
         if str(e.get("url", "")).endswith("/commune-code")),
        "",
    )  # fmt: skip
    return str(addr.get("text") or ""), str(addr.get("state") or ""), commune


def _phone(patient: dict[str, Any]) -> str:
    return next(
        (str(t["value"]) for t in patient.get("telecom") or ()
         if t.get("system") == "phone" and t.get("value")),
        "",
    )  # fmt: skip


def _name(patient: dict[str, Any]) -> str:
    name = (patient.get("name") or [{}])[0]
    return _text(name) or str(name.get("family") or "")


def xml1(v: Visit) -> dict[str, str]:
    """The visit's XML1 row (tổng hợp)."""
    enc, pat = v.encounter, v.patient
    period = enc.get("period") or {}
    start, end = str(period.get("start") or ""), str(period.get("end") or period.get("start") or "")
    diagnoses, from_reason = _diagnoses(v)
    main_code, main_text = diagnoses[0] if diagnoses else ("", "")
    kind = checkup_kind(enc)
    reason = (
        CHECKUP_KINDS[kind] if kind and from_reason
        else next((_text(r) for r in enc.get("reasonCode") or () if _text(r)), "")
        or _text((enc.get("type") or [{}])[0])
    )  # fmt: skip
    loai = _loai_kcb(enc)
    address, province, commune = _address(pat)
    disposition = (enc.get("hospitalization") or {}).get("dischargeDisposition")
    rv = _coding(disposition, f"{CS}/ma-loai-rv") or (
        "1" if enc.get("status") == "finished" else ""
    )
    died = _coding(disposition, "http://terminology.hl7.org/CodeSystem/discharge-disposition")
    made = timestamp(end)
    row = {
        "MA_LK": ma_lk(enc),
        "STT": "1",
        "MA_BN": "HSSK" + str(pat.get("id", "")).removeprefix("person-"),
        "HO_TEN": _name(pat),
        "SO_CCCD": _ident(pat, ids.CCCD) or _ident(pat, ids.PASSPORT),
        "NGAY_SINH": _birth(pat),
        "GIOI_TINH": _SEX.get(str(pat.get("gender")), "3"),
        "NHOM_MAU": _blood_group(v),
        "DIA_CHI": address,
        "MATINH_CU_TRU": province,
        "MAXA_CU_TRU": commune,
        "DIEN_THOAI": _phone(pat),
        "MA_THE_BHYT": _ident(pat, ids.BHYT),
        "LY_DO_VV": reason,
        "CHAN_DOAN_VAO": main_text,
        "CHAN_DOAN_RV": main_text,
        "MA_BENH_CHINH": main_code,
        "MA_BENH_KT": ";".join(code for code, _ in diagnoses[1:]),
        "NGAY_VAO": timestamp(start),
        "NGAY_RA": made,
        "SO_NGAY_DTRI": _days(loai, start, end),
        "KET_QUA_DTRI": "5" if died == "exp" else "",
        "MA_LOAI_RV": rv if died != "exp" else "",
        **_totals(enc),
        "NAM_QT": made[:4],
        "THANG_QT": str(int(made[4:6])) if made else "",
        "MA_LOAI_KCB": loai,
        "MA_CSKCB": facility(enc),
        "CAN_NANG": _weight(v),
    }
    return {k: _clean(val) for k, val in row.items()}


def _stored_summary(v: Visit) -> dict[str, str] | None:
    """The XML8 row of the summary the visit came with (its DocumentReference keeps the
    paper as sent), so a hồ sơ read in is written out as it was."""
    code = DOCS["XML8"][0]
    for r in v.related:
        if (
            r.get("resourceType") != "DocumentReference"
            or _coding(r.get("type"), f"{CS}/loai-giay-to") != code
        ):
            continue
        for c in r.get("content") or ():
            data = (c.get("attachment") or {}).get("data")
            if data:
                try:
                    rows = parse_table(base64.b64decode(data), "XML8")
                except (XmlError, ValueError):
                    continue
                if rows:
                    return rows[0]
    return None


def xml8(v: Visit, header: dict[str, str]) -> dict[str, str]:
    """The visit's XML8 row (tóm tắt hồ sơ bệnh án): the one it came with, else written from
    the visit: reason, measurements and results, treatment, conclusion."""
    stored = _stored_summary(v)
    if stored is not None:
        return {k: _clean(val) for k, val in stored.items()}
    enc = v.encounter
    kind = checkup_kind(enc)
    provider = enc.get("serviceProvider") or {}
    drugs = [
        _text(r.get("medicationCodeableConcept"))
        for r in v.related
        if r.get("resourceType") == "MedicationRequest"
    ]
    conclusion = next((_text(r) for r in enc.get("reasonCode") or () if _text(r)), "")
    row = {
        "MA_LK": header["MA_LK"],
        "MA_LOAI_KCB": header["MA_LOAI_KCB"],
        "DON_VI": str(provider.get("display") or header["MA_CSKCB"]),
        "NGAY_VAO": header["NGAY_VAO"],
        "NGAY_RA": header["NGAY_RA"],
        "CHAN_DOAN_VAO": header["CHAN_DOAN_VAO"],
        "CHAN_DOAN_RV": header["CHAN_DOAN_RV"],
        "QT_BENHLY": header["LY_DO_VV"] or (CHECKUP_KINDS[kind] if kind else ""),
        "TOMTAT_KQ": _results(v) or "Không có kết quả cận lâm sàng",
        "PP_DIEUTRI": "; ".join(d for d in drugs if d)
        or ("Tư vấn, theo dõi sức khỏe" if kind else "Không điều trị"),
        "KET_QUA_DTRI": header["KET_QUA_DTRI"],
        "GHI_CHU": conclusion if kind else "",
        "NGAY_CT": header["NGAY_RA"][:8],
    }
    return {k: _clean(val) for k, val in row.items()}


def rows(v: Visit) -> dict[str, dict[str, str]]:
    """{LOAIHOSO: row} of the visit; ExportError names what a hồ sơ cannot lack."""
    header = xml1(v)
    missing = [f for f in REQUIRED if not header.get(f)]
    if missing:
        raise ExportError(
            f"lượt khám {v.ref} thiếu {', '.join(missing)}: không lập được hồ sơ QĐ 130; bổ sung "
            "thông tin (mã cơ sở của trạm, ngày sinh, chẩn đoán ...) rồi gửi lại",
            f"visit {v.ref} lacks {', '.join(missing)}: no QĐ 130 hồ sơ can be written; "
            "complete it (the station's facility code, birth date, diagnosis ...) and resend",
        )
    return {
        name: _complete(name, row) for name, row in (("XML1", header), ("XML8", xml8(v, header)))
    }


def _complete(name: str, row: dict[str, str]) -> dict[str, str]:
    """Every field of the table, in the appendix's order (empty where the visit has none)."""
    return {f: row.get(f, "") for f in tables()[name].fields}


def envelope(tables: dict[str, dict[str, str]], made: date | None = None) -> bytes:
    """The unsigned GIAMDINHHS envelope of one hồ sơ (one MA_LK, as the gateway wants)."""
    files = {name: build_table(name, [row]) for name, row in tables.items()}
    day = (made or clock.today()).strftime("%Y%m%d")
    return build_envelope(tables["XML1"]["MA_CSKCB"], [files], made=day)
