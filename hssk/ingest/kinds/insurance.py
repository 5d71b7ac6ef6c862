"""The health-insurance register (thẻ BHYT): one card a row, as the person's Coverage."""

from __future__ import annotations

from hssk.ingest.kinds import csvrows
from hssk.ingest.kinds.csvrows import first
from hssk.ingest.model import CS, Item, Problem, Unit, clean_body, concept, parse_time, require
from hssk.kernel import identifiers as ids


def map_insurance(path: str, n: int, row: dict[str, str], known: frozenset[str] | None) -> Unit:
    rid = first(row, "ma_ban_ghi", "record_id")
    u = csvrows.unit("insurance", path, n, row, rid)
    p: list[Problem] = []
    require(row, ("ma_ban_ghi", "ma_the_bhyt", "ho_ten", "ngay_sinh"), f"dòng {n}", p)
    u.person = csvrows.demographics(row, "insurance", rid, p)
    start = parse_time(first(row, "gt_the_tu"), "gt_the_tu", p, allow_future_days=400)
    end = parse_time(first(row, "gt_the_den"), "gt_the_den", p, allow_future_days=20 * 366)
    if p:
        u.problems = p
        return u
    card = u.person.bhyt or ""
    active = "giảm" not in first(row, "trang_thai").lower()
    dkbd = first(row, "ma_dkbd")
    body = {
        "resourceType": "Coverage",
        "identifier": [{"system": ids.BHYT, "value": card}],
        "status": "active" if active else "cancelled",
        "type": concept(
            f"{CS}/bhyt-doi-tuong", first(row, "ma_doi_tuong") or card[:2], "Bảo hiểm y tế"
        ),
        "subscriberId": card,
        "period": {"start": start, "end": end},
        "payor": [{"display": "Bảo hiểm xã hội Việt Nam"}],
        "class": [
            {
                "type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan"),
                "value": f"muc-huong-{first(row, 'muc_huong') or card[2:3]}",
                "name": f"Nơi ĐKKCB ban đầu {dkbd}" if dkbd else None,
            }
        ],
    }
    u.items.append(Item(clean_body(body), f"insurance|{card}|{start or ''}"))
    return u


KIND = csvrows.csv_kind("insurance", "Dữ liệu thẻ BHYT", "Health-insurance register",
                        map_insurance, register=True)  # fmt: skip
