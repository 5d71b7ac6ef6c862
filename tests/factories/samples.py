"""Small synthetic hồ sơ for tests and benchmarks (shapes of ``xml130_tables``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hssk.ingest.xmlparse import build_envelope, build_table
from hssk.synth.xmlgen import Quirks, inner_xml

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


_GIVEN = ("Lan", "Hoa", "Mai", "Cúc", "Đào", "Huệ", "Thu")


def legacy_visit(n: int, *, fac: str = "01001", **over: str) -> dict[str, bytes]:
    """Inner files of one visit in the older QĐ 4210 format (XML1–XML5, the list tables without
    their outer element): 2 drugs, 1 service, 2 lab results, 1 clinical-course note; no CCCD
    (the person is known by the BHYT card). ``over`` sets XML1 fields by their 4210 names."""
    lk = f"LK4210{n:05d}"
    x1 = {
        "MA_LK": lk, "STT": "1", "MA_BN": f"BN{n:06d}", "HO_TEN": f"Trần Thị {_GIVEN[n % 7]}",
        "NGAY_SINH": f"19{50 + n % 40}0215", "GIOI_TINH": "2", "DIA_CHI": "Xã Y, Huyện Z, Hà Nội",
        "MA_THE": f"HT30101{n:08d}", "MA_DKBD": fac, "TEN_BENH": "Tăng huyết áp vô căn",
        "MA_BENH": "I10", "MA_BENHKHAC": "E11;K29.7", "NGAY_VAO": "202303150800",
        "NGAY_RA": "202303150930", "KET_QUA_DTRI": "1", "TINH_TRANG_RV": "1",
        "T_THUOC": "45000", "T_TONGCHI": "120000", "MA_LOAI_KCB": "1", "MA_CSKCB": fac,
        "CAN_NANG": "58",
    }  # fmt: skip
    x1.update(over)
    drugs = [{"MA_LK": lk, "STT": str(i), "MA_THUOC": "40.491", "TEN_THUOC": "Amlodipin 5mg",
              "DON_VI_TINH": "viên", "LIEU_DUNG": "1 viên/ngày", "SO_LUONG": "30",
              "NGAY_YL": "202303150830"} for i in (1, 2)]  # fmt: skip
    services = [{"MA_LK": lk, "STT": "1", "MA_DICH_VU": "23.0075.1494",
                 "TEN_DICH_VU": "Định lượng Glucose", "SO_LUONG": "1",
                 "NGAY_YL": "202303150810", "NGAY_KQ": "202303150850"}]  # fmt: skip
    labs = [{"MA_LK": lk, "STT": str(i), "MA_DICH_VU": "23.0075.1494", "MA_CHI_SO": f"GLU{i}",
             "TEN_CHI_SO": "Glucose", "GIA_TRI": f"{6 + i}.2", "NGAY_KQ": "202303150850"}
            for i in (1, 2)]  # fmt: skip
    notes = [{"MA_LK": lk, "STT": "1", "DIEN_BIEN": "Huyết áp 150/95, tỉnh táo",
              "NGAY_YL": "202303150815"}]  # fmt: skip
    q = Quirks(cdata=True)  # as exporters of the time wrote text fields
    tables_ = {"XML1": [x1], "XML2": drugs, "XML3": services, "XML4": labs, "XML5": notes}
    return {name: inner_xml(name, rows, q, legacy=True).encode() for name, rows in tables_.items()}


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
