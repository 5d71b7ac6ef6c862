"""Immunization registries (COVID-19, the expanded programme TCMR): one dose a row."""

from __future__ import annotations

from hssk.ingest.kinds import csvrows
from hssk.ingest.kinds.csvrows import first
from hssk.ingest.model import (
    CS,
    Item,
    Problem,
    Unit,
    check_facility,
    clean_body,
    concept,
    org_ref,
    parse_time,
    require,
)


def _dose_number(row: dict[str, str], p: list[Problem]) -> int | None:
    text = first(row, "mui_so", "dose_number")
    dose = int(text) if text.isdigit() and 0 < int(text) < 100 else None
    if text and dose is None:
        p.append(Problem("dose.invalid", "mui_so", text[:20],
                         f"mui_so '{text[:20]}' is not a dose number 1–99.",
                         f"mui_so '{text[:20]}' không phải số mũi 1–99."))  # fmt: skip
    return dose


def map_immunization(path: str, n: int, row: dict[str, str], known: frozenset[str] | None) -> Unit:
    rid = first(row, "ma_ban_ghi", "record_id")
    u = csvrows.unit("immunization", path, n, row, rid)
    p: list[Problem] = []
    require(row, ("ma_ban_ghi", "ma_vac_xin", "ngay_tiem", "ho_ten", "ngay_sinh"), f"dòng {n}", p)
    subject = first(row, "ma_doi_tuong") or rid
    u.person = csvrows.demographics(
        row, f"immunization:{first(row, 'chuong_trinh') or 'tc'}", subject, p
    )
    when = parse_time(first(row, "ngay_tiem"), "ngay_tiem", p)
    fac = check_facility(first(row, "ma_co_so", "facility_code"), "ma_co_so", known, p)
    dose = _dose_number(row, p)
    u.facility, u.visit_date = fac, (when or "")[:10] or None
    if p:
        u.problems = p
        return u
    site = first(row, "vi_tri_tiem")
    body = {
        "resourceType": "Immunization",
        "identifier": [{"system": f"{CS}/ma-mui-tiem", "value": rid}],
        "status": "completed",
        "vaccineCode": concept(
            f"{CS}/vac-xin", first(row, "ma_vac_xin"), first(row, "ten_vac_xin") or None
        ),
        "occurrenceDateTime": when,
        "primarySource": True,
        "lotNumber": first(row, "so_lo") or None,
        "site": {"text": site} if site else None,
        "route": concept(
            "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "PO", "Uống"
        )
        if site == "Uống"
        else None,
        "performer": [
            {"actor": {**(org_ref(fac) or {}), "display": first(row, "ten_co_so") or fac}}
        ],
        "protocolApplied": [
            {"series": first(row, "chuong_trinh") or None, "doseNumberPositiveInt": dose or 1}
        ],
    }
    u.items.append(Item(clean_body(body), f"immunization|{rid}"))
    return u


KIND = csvrows.csv_kind("immunization", "Dữ liệu tiêm chủng", "Immunization registry",
                        map_immunization, checks_facility=True, pooled=True)  # fmt: skip
