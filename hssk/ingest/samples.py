"""Small synthetic hồ sơ for tests and benchmarks (shapes of ``xml130_tables``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hssk.ingest.xmlparse import build_envelope, build_table

FACILITIES = ("01001", "01002", "79001")


def visit(
    n: int, *, fac: str = "01001", drugs: int = 2, services: int = 1, labs: int = 2, **over: str
) -> dict[str, bytes]:
    """Inner files of one synthetic visit (XML1 + lines)."""
    lk = f"LK{n:06d}"
    x1 = {
        "MA_LK": lk,
        "STT": "1",
        "MA_BN": f"BN{n:06d}",
        "HO_TEN": f"Nguyễn Văn Thử {n}",
        "SO_CCCD": f"0010850{n:05d}",
        "NGAY_SINH": "198503040000",
        "GIOI_TINH": "1",
        "MA_THE_BHYT": f"DN40101{n:08d}",
        "DIA_CHI": "Số 1, Phường X,,Thành phố Hà Nội",
        "MA_BENH_CHINH": "J06.9",
        "MA_BENH_KT": "I10;E11",
        "CHAN_DOAN_RV": "Viêm họng cấp",
        "NGAY_VAO": "202501021030",
        "NGAY_RA": "202501021130",
        "MA_LOAI_KCB": "01",
        "MA_CSKCB": fac,
        "T_THUOC": "12000.50",
        "T_TONGCHI_BV": "150000",
        "KET_QUA_DTRI": "1",
    }
    x1.update(over)
    files = {"XML1": build_table("XML1", [x1])}
    if drugs:
        rows = [
            {
                "MA_LK": lk,
                "STT": str(i),
                "MA_THUOC": "40.17",
                "TEN_THUOC": "Paracetamol 500mg",
                "SO_LUONG": "10",
                "DON_VI_TINH": "viên",
                "LIEU_DUNG": "1 viên x 3 lần/ngày",
                "NGAY_YL": "202501021040",
            }
            for i in range(1, drugs + 1)
        ]
        files["XML2"] = build_table("XML2", rows)
    if services:
        rows = [
            {
                "MA_LK": lk,
                "STT": str(i),
                "MA_DICH_VU": "02.1896",
                "TEN_DICH_VU": "Công thức máu",
                "SO_LUONG": "1",
                "NGAY_YL": "202501021045",
                "NGAY_TH_YL": "202501021050",
            }
            for i in range(1, services + 1)
        ]
        files["XML3"] = build_table("XML3", rows)
    if labs:
        rows = [
            {
                "MA_LK": lk,
                "STT": str(i),
                "MA_DICH_VU": "02.1896",
                "MA_CHI_SO": f"CS{i}",
                "TEN_CHI_SO": f"Chỉ số {i}",
                "GIA_TRI": str(100 + i),
                "DON_VI_DO": "g/L",
                "NGAY_KQ": "202501021100",
            }
            for i in range(1, labs + 1)
        ]
        files["XML4"] = build_table("XML4", rows)
    return files


def write_feed(path: Path, visits: list[dict[str, bytes]], fac: str = "01001") -> Path:
    path.write_bytes(build_envelope(fac, visits))
    return path


def expected_counts(drugs: int = 2, services: int = 1, labs: int = 2) -> dict[str, Any]:
    """Resources one visit of ``visit`` yields."""
    out = {
        "Encounter": 1,
        "Condition": 3,
        "MedicationRequest": drugs,
        "MedicationDispense": drugs,
        "Procedure": services,
        "Observation": labs,
        "DiagnosticReport": 1 if labs else 0,
    }
    return {k: v for k, v in out.items() if v}
