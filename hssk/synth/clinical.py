"""A small built-in clinical table: ICD-10 diagnoses with the drugs, services and lab values
that go with them, so generated visits make clinical sense.

Drug, service and lab codes are illustrative (shaped like the DMDC catalogues, not copied from
them: the national lists were not available); names and units are real.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Drug:
    code: str  # MA_THUOC (active-ingredient style code)
    name: str  # TEN_THUOC
    strength: str  # HAM_LUONG
    unit: str  # DON_VI_TINH
    route: str  # DUONG_DUNG code: 1.01 oral, 2.15 IV injection, 2.10 IM injection
    form: str  # DANG_BAO_CHE
    per_day: int
    price: int  # VND per unit
    usage: str  # CACH_DUNG


@dataclass(frozen=True)
class Service:
    code: str  # MA_DICH_VU
    name: str
    group: str  # MA_NHOM: 1 xét nghiệm, 2 CĐHA, 3 thăm dò chức năng, 8 thủ thuật, 13 khám
    price: int


@dataclass(frozen=True)
class Lab:
    service: str  # MA_DICH_VU that produced it
    code: str  # MA_CHI_SO
    name: str
    unit: str
    low: float  # range of values for this diagnosis
    high: float
    decimals: int
    normal: str  # reference range shown in MO_TA


@dataclass(frozen=True)
class Condition:
    icd: str
    name: str
    inpatient: float  # probability that the episode is inpatient (MA_LOAI_KCB 03)
    los: tuple[int, int]  # inpatient days
    drugs: tuple[Drug, ...]
    services: tuple[Service, ...]
    labs: tuple[Lab, ...]
    vitals: str  # template for the clinical course; {bp} {t} {spo2} {glu}
    extra_icd: tuple[str, ...] = ()  # secondary codes sometimes added (MA_BENH_KT)
    station_ok: bool = True  # treated at commune stations


EXAM = Service("13.0001", "Khám bệnh", "13", 38_700)
BED = Service("15.0001", "Ngày giường bệnh Nội khoa", "15", 214_000)
CBC = Service("22.0120", "Tổng phân tích tế bào máu ngoại vi (bằng máy đếm laser)", "1", 46_200)
GLU = Service("23.0075", "Định lượng Glucose [Máu]", "1", 21_500)
HBA1C = Service("23.0083", "Định lượng HbA1c [Máu]", "1", 101_000)
LIPID = Service("23.0041", "Định lượng Cholesterol toàn phần [Máu]", "1", 26_900)
CREA = Service("23.0051", "Định lượng Creatinin [Máu]", "1", 21_500)
CRP = Service("23.0058", "Định lượng CRP [Máu]", "1", 53_800)
XRAY = Service("18.0119", "Chụp X-quang ngực thẳng", "2", 65_400)
ECG = Service("21.0014", "Điện tim thường", "3", 32_800)
ENDO = Service("20.0080", "Nội soi thực quản - dạ dày - tá tràng", "3", 244_000)
NS1 = Service("24.0163", "Dengue virus NS1Ag test nhanh", "1", 129_000)
URINE = Service("23.0206", "Tổng phân tích nước tiểu (bằng máy tự động)", "1", 27_400)
US_OB = Service("18.0001", "Siêu âm thai", "2", 43_900)
DELIVERY = Service("13.0141", "Đỡ đẻ thường ngôi chỏm", "8", 675_000)

PARA = Drug(
    "40.48", "Paracetamol", "500mg", "Viên", "1.01", "Viên nén", 3, 350, "Uống khi sốt > 38.5°C"
)
AMOX = Drug("40.152", "Amoxicilin", "500mg", "Viên", "1.01", "Viên nang", 3, 1_200, "Uống sau ăn")
AMLO = Drug("40.479", "Amlodipin", "5mg", "Viên", "1.01", "Viên nén", 1, 450, "Uống buổi sáng")
LOSA = Drug("40.503", "Losartan", "50mg", "Viên", "1.01", "Viên nén", 1, 1_500, "Uống buổi sáng")
METF = Drug("40.790", "Metformin", "850mg", "Viên", "1.01", "Viên nén", 2, 600, "Uống sau ăn")
GLIC = Drug(
    "40.781",
    "Gliclazid",
    "30mg",
    "Viên",
    "1.01",
    "Viên giải phóng có kiểm soát",
    1,
    1_800,
    "Uống trước ăn sáng",
)
CEFT = Drug(
    "40.188", "Ceftriaxon", "1g", "Lọ", "2.15", "Bột pha tiêm", 2, 18_000, "Tiêm tĩnh mạch chậm"
)
OMEP = Drug(
    "40.677", "Omeprazol", "20mg", "Viên", "1.01", "Viên nang", 2, 900, "Uống trước ăn 30 phút"
)
DOMP = Drug("40.666", "Domperidon", "10mg", "Viên", "1.01", "Viên nén", 3, 300, "Uống trước ăn")
ORS = Drug(
    "40.1001", "Oresol", "4.1g", "Gói", "1.01", "Thuốc bột", 3, 2_000, "Pha 200ml nước, uống dần"
)
ZINC = Drug("40.1010", "Kẽm gluconat", "10mg", "Gói", "1.01", "Cốm", 1, 2_500, "Uống sau ăn")
AMBRO = Drug("40.984", "Ambroxol", "30mg", "Viên", "1.01", "Viên nén", 2, 500, "Uống sau ăn")
MELOX = Drug("40.40", "Meloxicam", "7.5mg", "Viên", "1.01", "Viên nén", 1, 700, "Uống sau ăn no")
CIPRO = Drug(
    "40.210", "Ciprofloxacin", "500mg", "Viên", "1.01", "Viên nén bao phim", 2, 1_100, "Uống sau ăn"
)
OXY = Drug(
    "40.1150", "Oxytocin", "5UI", "Ống", "2.10", "Dung dịch tiêm", 1, 6_000, "Tiêm bắp sau sổ thai"
)

CONDITIONS: dict[str, Condition] = {
    c.icd: c
    for c in (
        Condition("I10", "Tăng huyết áp vô căn (nguyên phát)", 0.03, (3, 6), (AMLO, LOSA),
                  (EXAM, ECG, LIPID, CREA),
                  (Lab("23.0041", "CHOL", "Cholesterol toàn phần", "mmol/L", 4.5, 7.2, 1, "3.9 - 5.2"),
                   Lab("23.0051", "CREA", "Creatinin", "µmol/L", 70, 130, 0, "62 - 120")),
                  "Mạch 82 l/p, HA {bp} mmHg, nhiệt độ {t}°C", ("E78.0",)),
        Condition("E11", "Bệnh đái tháo đường không phụ thuộc insulin", 0.03, (4, 8), (METF, GLIC),
                  (EXAM, GLU, HBA1C),
                  (Lab("23.0075", "GLU", "Glucose", "mmol/L", 7.5, 15.0, 1, "3.9 - 6.4"),
                   Lab("23.0083", "HBA1C", "HbA1c", "%", 6.8, 10.5, 1, "4 - 6")),
                  "HA {bp} mmHg, đường máu mao mạch {glu} mmol/L", ("E78.0",)),
        Condition("J06.9", "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu", 0.0, (0, 0),
                  (PARA, AMOX), (EXAM,), (), "Sốt {t}°C, họng đỏ, phổi không ran"),
        Condition("J18.9", "Viêm phổi, không đặc hiệu", 0.7, (5, 9), (CEFT, PARA), (EXAM, CBC, CRP, XRAY),
                  (Lab("22.0120", "WBC", "Số lượng bạch cầu", "G/L", 11.5, 22.0, 1, "4 - 10"),
                   Lab("23.0058", "CRP", "CRP", "mg/L", 25, 180, 0, "< 5"),
                   Lab("18.0119", "XQNGUC", "X-quang ngực thẳng", "", 0, 0, 0,
                       "Đám mờ không đồng nhất thùy dưới phổi")),
                  "Sốt {t}°C, ho đờm, SpO2 {spo2}%, phổi ran nổ", station_ok=False),
        Condition("K29.7", "Viêm dạ dày, không đặc hiệu", 0.02, (2, 4), (OMEP, DOMP), (EXAM, ENDO),
                  (Lab("20.0080", "NSDD", "Nội soi dạ dày", "", 0, 0, 0, "Niêm mạc hang vị sung huyết"),),
                  "Đau thượng vị, bụng mềm, HA {bp} mmHg"),
        Condition("A90", "Sốt Dengue", 0.45, (3, 6), (PARA, ORS), (EXAM, CBC, NS1),
                  (Lab("22.0120", "PLT", "Số lượng tiểu cầu", "G/L", 25, 120, 0, "150 - 450"),
                   Lab("22.0120", "HCT", "Hematocrit", "%", 40, 52, 1, "36 - 46"),
                   Lab("24.0163", "NS1", "Dengue NS1Ag", "", 0, 0, 0, "Dương tính")),
                  "Sốt {t}°C ngày 3, chấm xuất huyết dưới da, HA {bp} mmHg", station_ok=False),
        Condition("A09", "Tiêu chảy và viêm dạ dày ruột do nhiễm trùng", 0.1, (2, 4), (ORS, ZINC),
                  (EXAM,), (), "Đi ngoài phân lỏng 5 lần/ngày, dấu mất nước (-), nhiệt độ {t}°C"),
        Condition("J20.9", "Viêm phế quản cấp, không đặc hiệu", 0.05, (3, 5), (AMOX, AMBRO, PARA),
                  (EXAM, CBC, XRAY),
                  (Lab("22.0120", "WBC", "Số lượng bạch cầu", "G/L", 8.0, 13.0, 1, "4 - 10"),),
                  "Ho khan, phổi ran rít, nhiệt độ {t}°C, SpO2 {spo2}%"),
        Condition("M54.5", "Đau vùng thắt lưng", 0.0, (0, 0), (MELOX, PARA), (EXAM,), (),
                  "Đau thắt lưng, hạn chế vận động, HA {bp} mmHg"),
        Condition("N39.0", "Nhiễm khuẩn hệ tiết niệu, vị trí không xác định", 0.05, (3, 5), (CIPRO,),
                  (EXAM, URINE),
                  (Lab("23.0206", "LEU-U", "Bạch cầu niệu", "Leu/µL", 75, 500, 0, "Âm tính"),),
                  "Tiểu buốt, tiểu rắt, nhiệt độ {t}°C"),
        Condition("O80", "Đẻ thường một thai", 1.0, (2, 4), (OXY, PARA), (EXAM, US_OB, CBC, DELIVERY),
                  (Lab("22.0120", "HGB", "Huyết sắc tố", "g/L", 105, 135, 0, "120 - 150"),),
                  "Chuyển dạ, cơn co tử cung đều, tim thai 140 l/p, HA {bp} mmHg", station_ok=False),
    )
}  # fmt: skip

# Acute episodes by age band: (icd, weight).
ACUTE_BY_AGE: tuple[tuple[int, int, tuple[tuple[str, float], ...]], ...] = (
    (0, 5, (("J06.9", 5), ("A09", 3), ("J20.9", 1.5), ("J18.9", 0.8), ("A90", 0.4))),
    (6, 17, (("J06.9", 5), ("A09", 1), ("A90", 1), ("J20.9", 1), ("K29.7", 0.3))),
    (
        18,
        59,
        (("J06.9", 4), ("K29.7", 2), ("M54.5", 1.5), ("A90", 0.8), ("N39.0", 1), ("J20.9", 1)),
    ),
    (
        60,
        120,
        (
            ("J06.9", 2),
            ("J18.9", 1.2),
            ("K29.7", 1.5),
            ("M54.5", 2),
            ("J20.9", 1.5),
            ("N39.0", 0.8),
        ),
    ),
)


def acute_choices(age: int) -> tuple[tuple[str, float], ...]:
    return next(c for lo, hi, c in ACUTE_BY_AGE if lo <= age <= hi)


def lab_value(lab: Lab, rng: random.Random) -> str:
    """A value in the diagnosis range, formatted with '.' decimals (or the text finding)."""
    if lab.high == 0:
        return lab.normal
    v = rng.uniform(lab.low, lab.high)
    return f"{v:.{lab.decimals}f}"


def vitals(cond: Condition, rng: random.Random) -> str:
    sys_bp = rng.randint(145, 175) if cond.icd == "I10" else rng.randint(105, 135)
    return cond.vitals.format(
        bp=f"{sys_bp}/{rng.randint(70, 100)}",
        t=f"{rng.uniform(37.8, 39.6) if cond.icd not in ('I10', 'E11', 'M54.5') else 36.8:.1f}",
        spo2=rng.randint(90, 97),
        glu=f"{rng.uniform(8, 14):.1f}",
    )
