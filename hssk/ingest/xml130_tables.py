"""Table layouts of the QĐ 130/4750/3176 HIS export (shared by the parser and the generator),
and how the older QĐ 4210 and the 3176 variant name their fields.

Fields, their order, maximum lengths and types come from the official QĐ 4750 appendix
(``data/qd4750-fields.csv``, copied from ../shared/spec; a test holds every layout against
it). Root elements and record paths come from 1,152 real exports
(``data/xml130-observed-structure.json``); those of XML0, XML6, XML10, XML11 and XML15,
absent from that sample, from vendors' exporters (../shared/spec/xml130.md §3.1).

XML12 (biên bản giám định y khoa) is in the appendix but is entered on the insurance portal,
never sent by a HIS: its layout is known (``appendix()``) and a hồ sơ carrying it is refused
with that reason (``REFUSED``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Table:
    """One inner file of a hồ sơ: its LOAIHOSO, root element, record path and field order."""

    name: str
    root: str
    record_path: str  # '/'-separated, starting at the root; equal to root for single records
    fields: tuple[str, ...]

    @property
    def single(self) -> bool:
        return self.record_path == self.root

    @property
    def row_tag(self) -> str:
        return self.record_path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Field:
    """One field of the appendix: its order, maximum length (None: no limit) and whether QĐ
    4750 types it as a number ('Số')."""

    table: str
    order: int
    name: str
    max_len: int | None
    number: bool


# Record paths of the tables the real-export sample lacks (vendor practice, spec §3.1).
_PATHS = {
    "XML0": "CHI_TIEU_TRANG_THAI_KCB/DSACH_TRANG_THAI_KCB/TRANG_THAI_KCB",
    "XML6": "CHI_TIEU_HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS/"
    "DSACH_HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS/HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS",
    "XML10": "CHI_TIEU_DU_LIEU_GIAY_NGHI_DUONG_THAI",
    "XML11": "CHI_TIEU_DU_LIEU_GIAY_CHUNG_NHAN_NGHI_VIEC_HUONG_BAO_HIEM_XA_HOI",
    "XML15": "CHI_TIEU_DIEUTRI_BENHLAO/DSACH_CHITIET_DIEUTRI_BENHLAO/CHITIET_DIEUTRI_BENHLAO",
}

# Tables of the appendix a hồ sơ may not carry, with the reason (Vietnamese, English).
REFUSED = {
    "XML12": (
        "XML12 (biên bản giám định y khoa) được nhập trực tiếp trên cổng giám định BHXH, không "
        "gửi từ phần mềm HIS; HSSK không nhận bảng này: bỏ XML12 khỏi hồ sơ rồi gửi lại.",
        "XML12 (medical-assessment record) is entered directly on the insurance portal, not "
        "sent from a HIS; HSSK does not take it: remove XML12 from the hồ sơ and send again.",
    )
}


# Maximum lengths changed after QĐ 130 (the appendix's column gives QĐ 130's): (table, field)
# → new length. QĐ 4750 widened MA_DOITUONG_KCB to 4 ("1.10"); QĐ 1931/2026 widened MUC_HUONG
# to 4 from 1 July 2026 (one press source, spec: unconfirmed).
LENGTH_AMENDMENTS = {
    ("XML0", "MA_DOITUONG_KCB"): 4,
    ("XML1", "MA_DOITUONG_KCB"): 4,
    ("XML2", "MUC_HUONG"): 4,
    ("XML3", "MUC_HUONG"): 4,
}


def _order(name: str) -> int:
    return int(name[3:])


@lru_cache(maxsize=1)
def appendix() -> dict[str, tuple[Field, ...]]:
    """Every table of the QĐ 4750 appendix (XML0 … XML15, XML12 included), fields in order,
    with the later length amendments (``LENGTH_AMENDMENTS``)."""
    text = resources.files("hssk.ingest").joinpath("data/qd4750-fields.csv").read_text("utf-8")
    out: dict[str, list[Field]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        size = row["max_len"].strip()
        out.setdefault(row["table"], []).append(
            Field(
                table=row["table"],
                order=int(row["order"]),
                name=row["field"],
                max_len=LENGTH_AMENDMENTS.get(
                    (row["table"], row["field"]), None if size == "n" else int(size)
                ),
                number=row["type_after_qd4750"].strip() == "Số",
            )
        )
    return {
        k: tuple(sorted(v, key=lambda f: f.order))
        for k, v in sorted(out.items(), key=lambda kv: _order(kv[0]))
    }


@lru_cache(maxsize=1)
def tables() -> dict[str, Table]:
    """The tables a hồ sơ carries, by LOAIHOSO (XML0 … XML15 but the refused XML12), with the
    appendix's fields."""
    raw = json.loads(
        resources.files("hssk.ingest")
        .joinpath("data/xml130-observed-structure.json")
        .read_text("utf-8")
    )
    paths = dict(_PATHS)
    for name, info in raw["tables"].items():
        (paths[name],) = info["record_paths"]
    out: dict[str, Table] = {}
    for name, fields in appendix().items():
        if name in REFUSED:
            continue
        path = paths[name]
        out[name] = Table(name, path.split("/", 1)[0], path, tuple(f.name for f in fields))
    return out


@lru_cache(maxsize=32)
def limits(name: str) -> dict[str, tuple[int | None, bool]]:
    """Field → (maximum length or None, number?) of table ``name``, for the per-record check."""
    return {f.name: (f.max_len, f.number) for f in appendix().get(name, ())}


# 3176 renames in XML13 (vendor practice; see the spec).
XML13_3176_RENAMES = {"MA_NOI_DI": "MA_CSKCB_DI", "MA_NOI_DEN": "MA_CSKCB_DEN"}

# QĐ 4210 (hồ sơ of 2018 – June 2024, XML1–XML5): its fields that QĐ 130 renamed, by table, as
# {4210 name: 130 name} (spec §3.3 "Old QĐ 4210"; XML2–XML4 kept the names the mapping uses).
# A province loads years of these to build lifelong records; they carry no CCCD.
LEGACY_4210_RENAMES: dict[str, dict[str, str]] = {
    "XML1": {
        "MA_THE": "MA_THE_BHYT",
        "TEN_BENH": "CHAN_DOAN_RV",
        "MA_BENH": "MA_BENH_CHINH",
        "MA_BENHKHAC": "MA_BENH_KT",
        "T_TONGCHI": "T_TONGCHI_BV",
        "TINH_TRANG_RV": "MA_LOAI_RV",  # same codes: 1 ra viện, 2 chuyển viện, 3 trốn, 4 xin về
    },
    "XML5": {"DIEN_BIEN": "DIEN_BIEN_LS", "NGAY_YL": "THOI_DIEM_DBLS"},
}


# QĐ 4210's tables in their field order (`sanglesoft/MOH.XML130` Xml4210.cs, cited in the spec).
LEGACY_4210_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(fields.split())
    for name, fields in {
        "XML1": "MA_LK STT MA_BN HO_TEN NGAY_SINH GIOI_TINH DIA_CHI MA_THE MA_DKBD GT_THE_TU "
        "GT_THE_DEN MIEN_CUNG_CT TEN_BENH MA_BENH MA_BENHKHAC MA_LYDO_VVIEN MA_NOI_CHUYEN "
        "MA_TAI_NAN NGAY_VAO NGAY_RA SO_NGAY_DTRI KET_QUA_DTRI TINH_TRANG_RV NGAY_TTOAN T_THUOC "
        "T_VTYT T_TONGCHI T_BNTT T_BNCCT T_BHTT T_NGUONKHAC T_NGOAIDS NAM_QT THANG_QT "
        "MA_LOAI_KCB MA_KHOA MA_CSKCB MA_KHUVUC MA_PTTT_QT CAN_NANG",
        "XML2": "MA_LK STT MA_THUOC MA_NHOM TEN_THUOC DON_VI_TINH HAM_LUONG DUONG_DUNG "
        "LIEU_DUNG SO_DANG_KY TT_THAU PHAM_VI TYLE_TT SO_LUONG DON_GIA THANH_TIEN MUC_HUONG "
        "T_NGUONKHAC T_BNTT T_BHTT T_BNCCT T_NGOAIDS MA_KHOA MA_BAC_SI MA_BENH NGAY_YL MA_PTTT",
        "XML3": "MA_LK STT MA_DICH_VU MA_VAT_TU MA_NHOM GOI_VTYT TEN_VAT_TU TEN_DICH_VU "
        "DON_VI_TINH PHAM_VI SO_LUONG DON_GIA TT_THAU TYLE_TT THANH_TIEN T_TRANTT MUC_HUONG "
        "T_NGUONKHAC T_BNTT T_BHTT T_BNCCT T_NGOAIDS MA_KHOA MA_GIUONG MA_BAC_SI MA_BENH NGAY_YL "
        "NGAY_KQ MA_PTTT",
        "XML4": "MA_LK STT MA_DICH_VU MA_CHI_SO TEN_CHI_SO GIA_TRI MA_MAY MO_TA KET_LUAN NGAY_KQ",
        "XML5": "MA_LK STT DIEN_BIEN HOI_CHAN PHAU_THUAT NGAY_YL",
    }.items()
}
QD4750_FROM = "20240701"  # hồ sơ of visits ending before this day were exported in QĐ 4210


@lru_cache(maxsize=8)
def legacy_table(name: str) -> Table:
    """Table ``name`` (XML1–XML5) as QĐ 4210 laid it out: the same root and record path,
    its own fields."""
    t = tables()[name]
    return Table(t.name, t.root, t.record_path, LEGACY_4210_FIELDS[name])


@lru_cache(maxsize=1)
def renames_to_130() -> dict[str, dict[str, str]]:
    """Per table, {name in a 3176 or 4210 export: the QĐ 130/4750 name the mapping reads}."""
    out = {name: dict(m) for name, m in LEGACY_4210_RENAMES.items()}
    out.setdefault("XML13", {}).update({v: k for k, v in XML13_3176_RENAMES.items()})
    return out


def root_aliases(table: Table) -> tuple[str, ...]:
    """Root elements a table is also found under: 4210-era exporters often dropped the outer
    wrapper of the list tables and started at the list (``DSACH_CHI_TIET_THUOC``)."""
    parts = table.record_path.split("/")
    return (parts[1],) if len(parts) == 3 else ()
