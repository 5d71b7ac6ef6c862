"""The Ministry's health-check hub (QĐ 1551/QĐ-BYT, 2026): periodic and screening health
checks go to the Ministry's personal-health database within 24 h of the check-up, signed,
in the Ministry's templates.

Templates (``data/ksk/hub.json``): adults (the catalog ``ksk-adult``, column codes of the
Ministry's ≥ 18 template), pupils, children under 6 and drivers (provisional files beside it:
the spec names those templates, not their fields; see each file's ``source``). A check-up is
sent in the template its kind and the person's age at the check-up choose. Its values are
the template's rules (catalog FHIRPath) over a Bundle of the person and that one visit, so a
field the catalog reads for the book reads the same here.

One record goes as ``{"hoSo": <JSON text>, "chuKySo": <base64 signature of that text's
UTF-8 bytes>, "chungThu": <the signer's certificate, base64 DER>}``; ``hoSo`` holds
``mauKSK`` (template), ``phienBan``, ``maLuotKham`` (the visit key, the hub's duplicate key)
and ``duLieu`` (every field of the template, in order, as text). The hub's REST interface
(QĐ 1551 PL02) is not in the spec: this shape and the result codes (``200`` received, ``400``
a field is wrong, ``401`` authentication, ``403`` signature refused, ``409`` the check-up was
already received) are assumptions kept in this module and its simulator [unconfirmed].
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hssk.catalog.catalogs import Catalog, load_catalog
from hssk.catalog.catalogs import get as get_catalog
from hssk.ingest.station_map import CHECKUP_KINDS
from hssk.kernel import identifiers as ids
from hssk.share import xml130_out
from hssk.share.partners import Partner
from hssk.share.xmlsign import Signer, sign_bytes

DATA = Path(__file__).parent / "data" / "ksk"
# Encounter.type codes of a health check: the station's kinds, 'KSK' (ingested health-check
# files, read by the adult catalog) and drivers' checks written through the API.
HUB_KINDS = (*CHECKUP_KINDS, "KSK", "ksk-lai-xe")
ACCEPTED, DUPLICATE = "200", "409"
REFUSED = frozenset({"400", "403"})
_DATE = re.compile(r"^(\d{2}/\d{2}/\d{4}|\d{2}/\d{4}|\d{4})$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_SEX = {"male": "1", "female": "2", "other": "3", "unknown": "3"}


@dataclass(frozen=True)
class Template:
    name: str
    catalog: Catalog
    from_months: int | None
    to_months: int | None
    kinds: tuple[str, ...]

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.catalog.fields]


@dataclass(frozen=True)
class Hub:
    templates: dict[str, Template]
    required: tuple[str, ...]
    max_len: dict[str, int]
    default_max_len: int

    def limit(self, code: str) -> int:
        return self.max_len.get(code, self.default_max_len)


@lru_cache(maxsize=1)
def hub() -> Hub:
    """The templates and the rules of ``data/ksk/hub.json``."""
    raw = orjson.loads((DATA / "hub.json").read_bytes())
    out = {}
    for t in raw["templates"]:
        cat = get_catalog(t["catalog"]) if t.get("catalog") else load_catalog(DATA / t["file"])
        out[t["name"]] = Template(
            t["name"], cat, t.get("from_months"), t.get("to_months"), tuple(t.get("kinds") or ())
        )
    return Hub(out, tuple(raw["required"]), dict(raw["max_len"]), int(raw["default_max_len"]))


def _kinds(encounter: dict[str, Any]) -> set[str]:
    return {
        str(c.get("code"))
        for t in encounter.get("type") or ()
        for c in t.get("coding") or ()
        if c.get("code")
    }


def _months(birth: str, day: str) -> int | None:
    if len(birth) < 4 or len(day) < 10:
        return None
    # a year or year-month of birth only: the middle of what is known
    b = date.fromisoformat(birth + "-07-01"[len(birth) - 4 :] if len(birth) < 10 else birth)
    d = xml130_out.vn_day(day)
    return (d.year - b.year) * 12 + d.month - b.month - (d.day < b.day)


def choose(visit: xml130_out.Visit) -> Template:
    """The template of a check-up: by its kind (drivers), else by age at the check-up."""
    h = hub()
    kinds = _kinds(visit.encounter)
    for t in h.templates.values():
        if t.kinds and kinds & set(t.kinds):
            return t
    period = visit.encounter.get("period") or {}
    months = _months(str(visit.patient.get("birthDate") or ""), str(period.get("start") or ""))
    school = "ksk-hoc-duong" in kinds
    for t in h.templates.values():
        if t.kinds or months is None:
            continue
        if (t.from_months is None or months >= t.from_months) and (
            t.to_months is None or months < t.to_months
        ):
            if school and t.name == "ksk-adult":  # a pupil of 18: still the school's check
                continue
            return t
    return h.templates["ksk-student" if school else "ksk-adult"]


# --- values -----------------------------------------------------------------------------------


def _day(value: str) -> str:
    """ISO date/dateTime → dd/mm/yyyy (Vietnam date); partial dates keep what they have."""
    if len(value) == 4:
        return value
    if len(value) == 7:
        return f"{value[5:7]}/{value[:4]}"
    stamp = xml130_out.timestamp(value)
    return f"{stamp[6:8]}/{stamp[4:6]}/{stamp[:4]}"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return xml130_out.number(value)
    if isinstance(value, dict):
        if "value" in value and not isinstance(value["value"], dict):
            return _scalar(value["value"])  # Quantity, Identifier
        for c in value.get("coding") or ():
            if c.get("code"):
                return str(c["code"])
        if value.get("code"):
            return str(value["code"])
        return str(value.get("text") or value.get("display") or "")
    return str(value)


def flatten(code: str, ftype: str, values: list[Any]) -> str:
    """The catalog's values of a field as the template's text."""
    if not values:
        return ""
    if code == "GIOI_TINH":
        return _SEX.get(str(values[0]), _scalar(values[0]))
    if ftype in ("date", "datetime"):
        return _day(str(values[0]))
    texts = [t for t in (_scalar(v) for v in values) if t]
    if code == "HUYET_AP" and len(texts) >= 2:
        return f"{texts[0]}/{texts[1]}"
    if ftype == "list":
        return ";".join(dict.fromkeys(texts))
    return texts[0] if texts else ""


def record(visit: xml130_out.Visit, template: Template) -> dict[str, str]:
    """Every field of ``template`` for one check-up, in the template's order."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (visit.patient, visit.encounter, *visit.related)],
    }
    values = template.catalog.extract(bundle)
    out = {
        f.code: flatten(f.code, f.type, values.get(f.code) or []) for f in template.catalog.fields
    }
    # the visit itself says where and when, whatever kind of Encounter the template expects
    period = visit.encounter.get("period") or {}
    provider = visit.encounter.get("serviceProvider") or {}
    ident = provider.get("identifier") or {}
    gln = str(ident.get("value") or "") if ident.get("system") == ids.GLN else ""
    own = {
        "MA_CSKCB": xml130_out.facility(visit.encounter),
        "MA_GTIN_CSKCB": gln,
        "NGAY_VAO": _day(str(period.get("start") or "")) if period.get("start") else "",
    }
    for code, value in own.items():
        if code in out and value:
            out[code] = value
    return {k: v.strip() for k, v in out.items()}


def visit_key(visit: xml130_out.Visit) -> str:
    return xml130_out.ma_lk(visit.encounter)


def payload(visit: xml130_out.Visit, signer: Signer) -> dict[str, Any]:
    """The fixed content of one event: the record, its signature and the signer's
    certificate."""
    template = choose(visit)
    body = {
        "mauKSK": template.name,
        "phienBan": template.catalog.version,
        "maLuotKham": visit_key(visit),
        "duLieu": record(visit, template),
    }
    text = orjson.dumps(body).decode()
    cert = signer.certificate.public_bytes(serialization.Encoding.DER)
    return {
        "channel": "ksk-hub",
        "mauKSK": template.name,
        "maLuotKham": body["maLuotKham"],
        "hoSo": text,
        "chuKySo": sign_bytes(text.encode(), signer),
        "chungThu": base64.b64encode(cert).decode(),
    }


def post(client: httpx.Client, partner: Partner, body: dict[str, Any]) -> httpx.Response:
    wire = {k: body[k] for k in ("hoSo", "chuKySo", "chungThu")}
    return client.post(
        partner.endpoint,
        content=orjson.dumps(wire),
        headers={"Content-Type": "application/json", **partner.headers()},
        timeout=partner.timeout_s,
    )


def classify(resp: httpx.Response) -> tuple[bool, bool, str | None]:
    """(delivered, retry, error) of the hub's answer."""
    try:
        answer = orjson.loads(resp.content)
        code, message = str(answer.get("maKetQua") or ""), str(answer.get("thongDiep") or "")
    except (orjson.JSONDecodeError, AttributeError):
        code, message = "", resp.text[:300]
    if code in (ACCEPTED, DUPLICATE) and resp.status_code < 500:
        return True, False, None if code == ACCEPTED else f"{code}: {message}"[:500]
    return (
        False,
        code not in REFUSED,
        f"maKetQua {code or '?'} (HTTP {resp.status_code}): {message}"[:500],
    )


# --- the strict check (the hub's simulator) -----------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    code: str  # the hub's result code
    field: str | None
    vi: str
    en: str


def _format_problem(code: str, ftype: str, value: str) -> str | None:
    if ftype in ("date", "datetime") and not _DATE.match(value):
        return "dd/mm/yyyy"
    if ftype == "boolean" and value not in ("0", "1"):
        return "0/1"
    if ftype == "quantity" and not _NUMBER.match(value):
        return "số / a number"
    if (code.endswith("_PL") or code == "PHAN_LOAI_SK") and value not in "12345":
        return "1-5"
    if code == "GIOI_TINH" and value not in ("1", "2", "3"):
        return "1, 2, 3"
    return None


def check(body: dict[str, Any], trusted: list[x509.Certificate]) -> Refusal | None:
    """The first thing wrong with a record as sent (``post``'s body), or None."""
    from hssk.access.signing import check_signature, key_id

    try:
        hoso = orjson.loads(str(body["hoSo"]))
        cert = x509.load_der_x509_certificate(base64.b64decode(str(body["chungThu"])))
        signature = str(body["chuKySo"])
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
        return Refusal("400", None, f"hồ sơ KSK không đọc được: {exc}", f"unreadable record: {exc}")
    der = cert.public_bytes(serialization.Encoding.DER)
    if not any(t.public_bytes(serialization.Encoding.DER) == der for t in trusted):
        return Refusal("403", None, "chứng thư số chưa được đăng ký với Trục dữ liệu",
                       "the certificate is not registered with the hub")  # fmt: skip
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return Refusal("403", None, "chứng thư dùng loại khóa không được chấp nhận (RSA, ECDSA)",
                       "the certificate's key type is not accepted (RSA, ECDSA)")  # fmt: skip
    valid = check_signature([(key_id(key), "RS256", key)], str(body["hoSo"]).encode(), signature)
    if not valid[0]:
        return Refusal("403", None, "chữ ký số không khớp nội dung hồ sơ",
                       "the signature does not match the record")  # fmt: skip
    h = hub()
    template = h.templates.get(str(hoso.get("mauKSK")))
    if template is None:
        return Refusal("400", "mauKSK", f"mẫu KSK '{hoso.get('mauKSK')}' không có",
                       f"no template '{hoso.get('mauKSK')}'")  # fmt: skip
    if not hoso.get("maLuotKham"):
        return Refusal("400", "maLuotKham", "thiếu maLuotKham", "maLuotKham is missing")
    data = hoso.get("duLieu")
    if not isinstance(data, dict):
        return Refusal("400", "duLieu", "duLieu phải là một đối tượng", "duLieu must be an object")
    expected = template.codes
    sent = list(data)
    if sent != expected:
        extra = next((c for c in sent if c not in expected), None)
        missing = next((c for c in expected if c not in sent), None)
        where = next((i for i, (a, b) in enumerate(zip(sent, expected, strict=False)) if a != b), 0)
        field = extra or missing or expected[where]
        what = (
            ("trường không thuộc mẫu", "a field the template does not have") if extra
            else ("thiếu trường của mẫu", "a field of the template is missing") if missing
            else ("trường sai thứ tự", "fields out of order")
        )  # fmt: skip
        return Refusal("400", field, f"{field}: {what[0]} {template.name}",
                       f"{field}: {what[1]} ({template.name})")  # fmt: skip
    types = {f.code: f.type for f in template.catalog.fields}
    for code, value in data.items():
        if not isinstance(value, str):
            return Refusal("400", code, f"{code}: giá trị phải là chuỗi", f"{code}: not text")
        if len(value) > h.limit(code):
            return Refusal("400", code, f"{code}: dài {len(value)} ký tự, tối đa {h.limit(code)}",
                           f"{code}: {len(value)} characters, at most {h.limit(code)}")  # fmt: skip
        if code in h.required and not value:
            return Refusal("400", code, f"{code}: trường bắt buộc bị trống",
                           f"{code}: required field is empty")  # fmt: skip
        wanted = _format_problem(code, types[code], value) if value else None
        if wanted:
            return Refusal("400", code, f"{code}: '{value[:40]}' sai định dạng, cần {wanted}",
                           f"{code}: '{value[:40]}' is malformed, expected {wanted}")  # fmt: skip
    return None
