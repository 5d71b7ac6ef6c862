"""Source readers (what to read, in which order, from where to resume) and their mappers.

A job reads its files in order as a stream of *pieces*; each piece carries the position just
after it (file index, record index), which becomes the job's checkpoint when the batch that
holds it commits. Mapping (``map_payloads``) is a pure function so it runs in worker processes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import psycopg

from hssk.ingest import kinds, station_map
from hssk.ingest.map_xml130 import map_hoso
from hssk.ingest.model import (
    CS,
    HouseholdEntry,
    Item,
    Problem,
    Unit,
    check_document,
    check_facility,
    check_identifier,
    clean_body,
    concept,
    org_ref,
    parse_time,
    patient_element,
    require,
    sex_code,
)
from hssk.ingest.xmlparse import XmlError, decode_hoso, iter_hoso
from hssk.kernel import identifiers as ids
from hssk.kernel.sensitivity import sensitivity_of
from hssk.records import id_for_source_key, prerender
from hssk.registry import Prepared, prepare
from hssk.registry.types import SourceRecord

SMALL_FILE = 4 * 1024 * 1024  # an XML file up to this size is parsed whole in a worker
MAX_JSON = 256 * 1024 * 1024


class SourceError(Exception):
    """A file (not one record) cannot be read."""

    def __init__(self, rule: str, vi: str, en: str):
        self.rule, self.vi, self.reason = rule, vi, en
        super().__init__(f"{rule}: {en}")


@dataclass
class Piece:
    payload: tuple[Any, ...]
    pos: tuple[int, int]  # position just after this piece: (file index, record index)


def expand(kind: str, paths: Sequence[str]) -> list[str]:
    """Files of a job, in a stable order: directories are walked (by extension)."""
    exts = kinds.kind(kind).extensions
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(
                str(f) for f in path.rglob("*") if f.is_file() and f.suffix.lower() in exts
            )
            out.extend(found)
        else:
            out.append(str(path.resolve()) if path.exists() else str(path))
    return out


def _error_piece(
    kind: str, path: str, at: int, exc: XmlError | SourceError, pos: tuple[int, int]
) -> Piece:
    unit = Unit(key=f"{Path(path).name}#{at}", file=path, kind=kind)
    unit.problems.append(Problem(exc.rule, None, None, f"{Path(path).name}: {exc.reason}", exc.vi))
    return Piece(("unit", unit), pos)


def _missing(path: str) -> SourceError:
    return SourceError(
        "file.missing", f"Không tìm thấy tệp {path}.", f"file {path} does not exist."
    )


def read(kind: str, files: Sequence[str], start: tuple[int, int] = (0, 0)) -> Iterator[Piece]:
    """The pieces of ``files`` from position ``start`` on."""
    fi0, skip0 = start
    for fi in range(fi0, len(files)):
        path = files[fi]
        skip = skip0 if fi == fi0 else 0
        if not os.path.exists(path):
            yield _error_piece(kind, path, 0, _missing(path), (fi + 1, 0))
            continue
        if kind == "xml130":
            yield from _read_xml(path, fi, skip)
        elif kind == "edoc":
            yield Piece(("edoc", path), (fi + 1, 0))
        elif kind == "fhir":
            yield from _read_fhir(path, fi, skip)
        else:
            yield from _read_csv(kind, path, fi, skip)


def _read_xml(path: str, fi: int, skip: int) -> Iterator[Piece]:
    if os.path.getsize(path) <= SMALL_FILE:
        yield Piece(("xmlfile", path, skip), (fi + 1, 0))
        return
    n = skip
    try:
        for hoso in iter_hoso(path, skip=skip):
            n = hoso.index + 1
            yield Piece(("hoso", path, hoso), (fi, n))
    except XmlError as exc:
        yield _error_piece("xml130", path, n, exc, (fi + 1, 0))


def _read_csv(kind: str, path: str, fi: int, skip: int) -> Iterator[Piece]:
    n = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise SourceError(
                    "csv.empty",
                    "Tệp CSV rỗng hoặc không có dòng tiêu đề.",
                    "the CSV file is empty or has no header row.",
                )
            names = [h.strip().lower() for h in header]
            for values in reader:
                if not values:  # a blank line (DictReader skipped them too)
                    continue
                n += 1
                if n <= skip:
                    continue
                # The row becomes a dict in the mapping process (``_row``): the reader runs
                # in the writer's process, where every microsecond counts.
                yield Piece(("csv", path, n, values, names), (fi, n))
    except UnicodeDecodeError as exc:
        yield _error_piece(
            kind,
            path,
            n,
            SourceError(
                "csv.encoding",
                f"Tệp không phải UTF-8 (dòng {n + 1}): {exc.reason}.",
                f"the file is not UTF-8 (row {n + 1}): {exc.reason}; save it as UTF-8.",
            ),
            (fi + 1, 0),
        )
    except (SourceError, csv.Error) as exc:
        err = (
            exc
            if isinstance(exc, SourceError)
            else SourceError(
                "csv.syntax",
                f"CSV sai cú pháp ở dòng {n + 1}: {exc}",
                f"malformed CSV at row {n + 1}: {exc}",
            )
        )
        yield _error_piece(kind, path, n, err, (fi + 1, 0))


def _read_fhir(path: str, fi: int, skip: int) -> Iterator[Piece]:
    n = 0
    try:
        if path.endswith(".ndjson"):
            with open(path, "rb") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    n += 1
                    if n > skip:
                        yield Piece(("fhir", path, n, line), (fi, n))
            return
        if os.path.getsize(path) > MAX_JSON:
            raise SourceError(
                "json.size",
                "Tệp JSON quá lớn, hãy dùng NDJSON.",
                "the JSON file is too large: send NDJSON instead.",
            )
        doc = orjson.loads(Path(path).read_bytes())
        entries = [doc]
        if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
            entries = _bundle_entries(doc)
        for res in entries:
            n += 1
            if n > skip:
                yield Piece(("fhir", path, n, orjson.dumps(res)), (fi, n))
    except orjson.JSONDecodeError as exc:
        yield _error_piece(
            "fhir",
            path,
            n,
            SourceError("json.syntax", f"JSON sai cú pháp: {exc}", f"malformed JSON: {exc}"),
            (fi + 1, 0),
        )
    except SourceError as exc:
        yield _error_piece("fhir", path, n, exc, (fi + 1, 0))


def _bundle_entries(bundle: dict[str, Any]) -> list[Any]:
    """The resources of a bundle, with ``urn:uuid:`` references turned into ``Type/id``."""
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
    local: dict[str, str] = {}
    for n, e in enumerate(entries, 1):
        res, full = e.get("resource"), e.get("fullUrl")
        if isinstance(res, dict) and isinstance(full, str) and res.get("resourceType"):
            rid = res.get("id") or full.rsplit(":", 1)[-1].rsplit("/", 1)[-1] or str(n)
            res["id"] = str(rid)[:64]
            local[full] = f"{res['resourceType']}/{res['id']}"

    def fix(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {
                k: local.get(v, v) if k == "reference" and isinstance(v, str) else fix(v)
                for k, v in obj.items()
            }
        if isinstance(obj, list):
            return [fix(v) for v in obj]
        return obj

    return [fix(e.get("resource")) if local else e.get("resource") for e in entries]


# --- mapping (runs in workers) --------------------------------------------------------------
def map_payloads(
    kind: str, payloads: list[tuple[Any, ...]], known: frozenset[str] | None
) -> list[Unit]:
    out: list[Unit] = []
    for p in payloads:
        try:
            out.extend(_map_one(kind, p, known))
        except Exception as exc:  # a mapping defect must not stop the job: quarantine it
            out.append(_internal_error(kind, p, exc))
    # Work done here runs in the mapping processes, not in the writer: resource ids, and the
    # normalization of each distinct person (a child's doses share one record object).
    prepared: dict[int, Prepared] = {}
    for u in out:
        for it in u.items:
            body = it.body
            rtype = body["resourceType"]
            if "id" not in body:
                body["id"] = id_for_source_key(rtype, it.source_key)
            it.sensitivity = it.sensitivity or sensitivity_of(body)
            if rtype != "Appointment":  # (its person is a participant: attached by the writer)
                it.rendered = prerender(body, patient_element(rtype) if it.who else None)
                it.body = {"resourceType": rtype, "id": body["id"]}
        if u.person is not None and not u.problems:
            key = id(u.person)
            if key not in prepared:
                prepared[key] = prepare(u.person)
            u.prepared = prepared[key]
    return out


def _map_one(kind: str, p: tuple[Any, ...], known: frozenset[str] | None) -> list[Unit]:
    tag = p[0]
    if tag == "unit":
        return [p[1]]
    if tag == "xmlfile":
        return _map_xml_file(p[1], p[2], known)
    if tag == "edoc":
        return [_map_edoc_file(p[1], known)]
    if tag == "hoso":
        return [map_hoso(decode_hoso(p[2]), p[1], known)]
    if tag == "fhir":
        from hssk.ingest.fhir_input import map_resource

        return [map_resource(p[1], p[2], p[3])]
    return [MAPPERS[kind](p[1], p[2], _row(p[3], p[4]), known)]


def _row(values: list[str], names: list[str]) -> dict[str, str]:
    """A CSV row by column name: a short row's missing fields are empty, values past the
    header are dropped (as csv.DictReader does), unnamed columns are ignored."""
    if len(values) < len(names):
        values = values + [""] * (len(names) - len(values))
    return {k: v.strip() for k, v in zip(names, values, strict=False) if k}


def _internal_error(kind: str, p: tuple[Any, ...], exc: Exception) -> Unit:
    path = str(p[1]) if len(p) > 1 and not isinstance(p[1], Unit) else ""
    unit = Unit(key=f"{Path(path).name}#{p[2] if len(p) > 2 else 0}", file=path, kind=kind)
    if p[0] == "csv":
        unit.raw = _raw(_row(p[3], p[4]))
    elif p[0] == "fhir":
        unit.raw = bytes(p[3]).decode("utf-8", "replace")
    elif p[0] == "hoso":
        from hssk.ingest.xmlparse import raw_document

        unit.raw = raw_document(p[2])
    what = f"{type(exc).__name__}: {exc}"[:500]
    unit.problems.append(Problem("internal", None, None,
        f"the record could not be mapped ({what}); it is kept for replay after a fix.",
        f"không ánh xạ được bản ghi ({what}); đã lưu để phát lại sau khi sửa lỗi."))  # fmt: skip
    return unit


def _map_xml_file(path: str, skip: int, known: frozenset[str] | None) -> list[Unit]:
    out: list[Unit] = []
    n = skip
    try:
        for hoso in iter_hoso(path, skip=skip):
            n = hoso.index + 1
            out.append(map_hoso(decode_hoso(hoso), path, known))
    except XmlError as exc:
        out.append(_error_piece("xml130", path, n, exc, (0, 0)).payload[1])
    return out


def _map_edoc_file(path: str, known: frozenset[str] | None) -> Unit:
    from hssk.ingest.edocs import map_edocument

    try:
        if os.path.getsize(path) > SMALL_FILE:
            raise XmlError("xml.size", "Giấy tờ quá lớn.", "the e-document is too large.")
        return map_edocument(Path(path).read_bytes(), path, None, known)
    except XmlError as exc:
        return _error_piece("edoc", path, 0, exc, (0, 0)).payload[1]  # type: ignore[no-any-return]


def _raw(row: dict[str, str]) -> str:
    return orjson.dumps(row).decode()


def _first(row: dict[str, str], *names: str) -> str:
    for n in names:
        if row.get(n):
            return row[n]
    return ""


def _iso_date(value: str, element: str, p: list[Problem], *, partial: bool = False) -> str | None:
    return parse_time(value, element, p, allow_partial=partial)


_DEMOGRAPHIC_FIELDS = (
    ("ngay_sinh", "birth_date"), ("ho_ten", "full_name"), ("gioi_tinh", "sex"),
    ("so_dinh_danh", "so_cccd", "cccd"), ("ma_so_bhxh", "bhxh"), ("ma_the_bhyt", "bhyt"),
    ("so_dien_thoai", "dien_thoai", "phone"), ("dia_chi_thuong_tru", "dia_chi", "address"),
    ("ma_xa", "commune_code"), ("ma_tinh", "province_code"),
)  # fmt: skip


def _demographics(row: dict[str, str], source: str, rid: str, p: list[Problem]) -> SourceRecord:
    values = tuple(_first(row, *names) for names in _DEMOGRAPHIC_FIELDS)
    rec, problems = _checked_demographics(source, rid, values)
    p.extend(problems)
    return rec


@lru_cache(maxsize=512)
def _checked_demographics(
    source: str, rid: str, values: tuple[str, ...]
) -> tuple[SourceRecord, tuple[Problem, ...]]:
    """The person of a row, checked once: a child's doses repeat the same demographics row
    after row, and the identifier checks are the costly part of mapping a dose."""
    birth_raw, name, sex, doc, bhxh, bhyt, phone, address, commune, province = values
    p: list[Problem] = []
    birth = _iso_date(birth_raw, "ngay_sinh", p, partial=True)
    rec = SourceRecord(
        source=source,
        record_id=rid,
        full_name=name or None,
        birth_date=birth[:10] if birth else None,
        sex=sex_code(sex) or "U",
        cccd=check_document(doc, "so_cccd", p),
        bhxh=check_identifier("bhxh", bhxh, "ma_so_bhxh", p),
        bhyt=check_identifier("bhyt", bhyt, "ma_the_bhyt", p),
        phone=phone or None,
        address=address or None,
        commune_code=commune or None,
        province_code=province or None,
    )
    return rec, tuple(p)


def _unit(kind: str, path: str, n: int, row: dict[str, str], key: str) -> Unit:
    raw = _raw(row)
    unit = Unit(key=key or f"{Path(path).name}#{n}", file=path, kind=kind, raw=raw)
    if key:
        unit.digest = hashlib.blake2b(raw.encode(), digest_size=20).hexdigest()
    return unit


def map_population(path: str, n: int, row: dict[str, str], known: frozenset[str] | None) -> Unit:
    rid = _first(row, "ma_ban_ghi", "record_id")
    u = _unit("population", path, n, row, rid)
    p: list[Problem] = []
    require(row, ("ma_ban_ghi", "ho_ten", "ngay_sinh"), f"dòng {n}", p)
    u.person = _demographics(row, "population", rid, p)
    death = _first(row, "ngay_mat")
    if death:
        u.deceased_at = _iso_date(death, "ngay_mat", p)
    if _first(row, "ma_ho"):
        u.household = HouseholdEntry(_first(row, "ma_ho"), "head" if _is_head(row) else "join")
    u.problems = p
    u.registry_only = True
    return u


def map_insurance(path: str, n: int, row: dict[str, str], known: frozenset[str] | None) -> Unit:
    rid = _first(row, "ma_ban_ghi", "record_id")
    u = _unit("insurance", path, n, row, rid)
    p: list[Problem] = []
    require(row, ("ma_ban_ghi", "ma_the_bhyt", "ho_ten", "ngay_sinh"), f"dòng {n}", p)
    u.person = _demographics(row, "insurance", rid, p)
    start = parse_time(_first(row, "gt_the_tu"), "gt_the_tu", p, allow_future_days=400)
    end = parse_time(_first(row, "gt_the_den"), "gt_the_den", p, allow_future_days=20 * 366)
    if p:
        u.problems = p
        return u
    card = u.person.bhyt or ""
    active = "giảm" not in _first(row, "trang_thai").lower()
    dkbd = _first(row, "ma_dkbd")
    body = {
        "resourceType": "Coverage",
        "identifier": [{"system": ids.BHYT, "value": card}],
        "status": "active" if active else "cancelled",
        "type": concept(
            f"{CS}/bhyt-doi-tuong", _first(row, "ma_doi_tuong") or card[:2], "Bảo hiểm y tế"
        ),
        "subscriberId": card,
        "period": {"start": start, "end": end},
        "payor": [{"display": "Bảo hiểm xã hội Việt Nam"}],
        "class": [
            {
                "type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan"),
                "value": f"muc-huong-{_first(row, 'muc_huong') or card[2:3]}",
                "name": f"Nơi ĐKKCB ban đầu {dkbd}" if dkbd else None,
            }
        ],
    }
    u.items.append(Item(clean_body(body), f"insurance|{card}|{start or ''}"))
    return u


def map_immunization(path: str, n: int, row: dict[str, str], known: frozenset[str] | None) -> Unit:
    rid = _first(row, "ma_ban_ghi", "record_id")
    u = _unit("immunization", path, n, row, rid)
    p: list[Problem] = []
    require(row, ("ma_ban_ghi", "ma_vac_xin", "ngay_tiem", "ho_ten", "ngay_sinh"), f"dòng {n}", p)
    subject = _first(row, "ma_doi_tuong") or rid
    u.person = _demographics(row, f"immunization:{_first(row, 'chuong_trinh') or 'tc'}", subject, p)
    when = _iso_date(_first(row, "ngay_tiem"), "ngay_tiem", p)
    fac = check_facility(_first(row, "ma_co_so", "facility_code"), "ma_co_so", known, p)
    dose_text = _first(row, "mui_so", "dose_number")
    dose = int(dose_text) if dose_text.isdigit() and 0 < int(dose_text) < 100 else None
    if dose_text and dose is None:
        p.append(
            Problem(
                "dose.invalid",
                "mui_so",
                dose_text[:20],
                f"mui_so '{dose_text[:20]}' is not a dose number 1–99.",
                f"mui_so '{dose_text[:20]}' không phải số mũi 1–99.",
            )
        )
    u.facility, u.visit_date = fac, (when or "")[:10] or None
    if p:
        u.problems = p
        return u
    site = _first(row, "vi_tri_tiem")
    body = {
        "resourceType": "Immunization",
        "identifier": [{"system": f"{CS}/ma-mui-tiem", "value": rid}],
        "status": "completed",
        "vaccineCode": concept(
            f"{CS}/vac-xin", _first(row, "ma_vac_xin"), _first(row, "ten_vac_xin") or None
        ),
        "occurrenceDateTime": when,
        "primarySource": True,
        "lotNumber": _first(row, "so_lo") or None,
        "site": {"text": site} if site else None,
        "route": concept(
            "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "PO", "Uống"
        )
        if site == "Uống"
        else None,
        "performer": [
            {"actor": {**(org_ref(fac) or {}), "display": _first(row, "ten_co_so") or fac}}
        ],
        "protocolApplied": [
            {"series": _first(row, "chuong_trinh") or None, "doseNumberPositiveInt": dose or 1}
        ],
    }
    u.items.append(Item(clean_body(body), f"immunization|{rid}"))
    return u


def _num(row: dict[str, str], name: str, p: list[Problem], lo: float, hi: float) -> float | None:
    text = row.get(name) or ""
    if not text:
        return None
    try:
        v = float(text.replace(",", "."))
    except ValueError:
        v = float("nan")
    if not (lo <= v <= hi):
        p.append(
            Problem(
                "value.range",
                name,
                text[:20],
                f"{name} '{text[:20]}' is not a plausible value ({lo}–{hi}).",
                f"{name} '{text[:20]}' không hợp lý ({lo}–{hi}).",
            )
        )
        return None
    return round(v, 2)


def _blood_pressure(row: dict[str, str], p: list[Problem]) -> dict[str, float]:
    """``huyet_ap`` 'systolic/diastolic' as the two measurements (empty when absent)."""
    bp = _first(row, "huyet_ap")
    if not bp:
        return {}
    sys_m, dia_m = station_map.BY_KEY["systolic"], station_map.BY_KEY["diastolic"]
    parts = bp.split("/")
    try:
        sys_v, dia_v = float(parts[0]), float(parts[1])
        if len(parts) != 2 or not (
            sys_m.low <= sys_v <= sys_m.high and dia_m.low <= dia_v <= dia_m.high
        ):
            raise ValueError
    except (ValueError, IndexError):
        p.append(
            Problem(
                "value.range",
                "huyet_ap",
                bp[:20],
                f"huyet_ap '{bp[:20]}' is not 'systolic/diastolic' in mmHg.",
                f"huyet_ap '{bp[:20]}' không đúng dạng tâm thu/tâm trương (mmHg).",
            )
        )
        return {}
    return {"systolic": sys_v, "diastolic": dia_v}


def map_station(path: str, n: int, row: dict[str, str], known: frozenset[str] | None) -> Unit:
    """A station entry (``loai``): a check-up (kham_dinh_ky, kham_hoc_duong, sang_loc_ncd), a
    death (tu_vong) or a household listing (ho_gia_dinh); mapped by ``station_map``, as the
    station's web form is."""
    rid = _first(row, "ma_ban_ghi", "record_id")
    u = _unit("station", path, n, row, rid)
    p: list[Problem] = []
    require(row, ("ma_ban_ghi", "loai", "ngay", "ho_ten", "ngay_sinh"), f"dòng {n}", p)
    u.person = _demographics(row, "station", rid, p)
    when = _iso_date(_first(row, "ngay"), "ngay", p)
    fac = check_facility(_first(row, "ma_tram"), "ma_tram", known, p)
    u.facility, u.visit_date = fac, (when or "")[:10] or None
    kind = _first(row, "loai")
    diagnosis = _first(row, "nguyen_nhan_tu_vong" if kind == "tu_vong" else "ket_luan")
    icd, warning = station_map.icd_check(_first(row, "ma_icd"), "ma_icd", diagnosis or None, p)
    if warning is not None:  # kept, with the doubt shown to the station (no one to confirm it)
        u.warnings.append(warning)
    station, key = station_map.provider(fac), f"station|{rid}"
    items: list[tuple[str, dict[str, Any]]] = []
    if kind == "tu_vong":
        require(row, ("ngay_mat",), f"dòng {n}", p)
        death = _iso_date(_first(row, "ngay_mat"), "ngay_mat", p)
        if death and not p:
            u.deceased_at = death
            entry = station_map.StationDeath(
                date.fromisoformat(death), _first(row, "nguyen_nhan_tu_vong") or None, icd
            )
            items = station_map.death_items(entry, key, station)
    elif kind == "ho_gia_dinh":
        u.registry_only = True
        if _first(row, "ma_ho"):
            u.household = HouseholdEntry(
                _first(row, "ma_ho"), "head" if _is_head(row) else "join", when
            )
    elif kind in station_map.CSV_CHECKUP_KINDS:
        values = {
            m.key: v
            for m in station_map.MEASUREMENTS
            if m.column and (v := _num(row, m.column, p, m.low, m.high)) is not None
        }
        values.update(_blood_pressure(row, p))
        if when and not p:
            checkup = station_map.Checkup(
                station_map.CSV_CHECKUP_KINDS[kind],
                date.fromisoformat(when[:10]),
                values,
                smoking=_first(row, "hut_thuoc") or None,
                alcohol=_first(row, "uong_ruou") or None,
                conclusion=_first(row, "ket_luan") or None,
                icd=icd,
            )
            items = station_map.checkup_items(checkup, key, station)
    elif kind:
        known_kinds = ", ".join([*station_map.CSV_CHECKUP_KINDS, "tu_vong", "ho_gia_dinh"])
        p.append(
            Problem(
                "value.code",
                "loai",
                kind[:40],
                f"loai '{kind[:40]}' is not one of {known_kinds}.",
                f"loai '{kind[:40]}' không thuộc các loại {known_kinds}.",
            )
        )
    u.problems = p
    if not p:
        u.items += [Item(body, k) for k, body in items]
    return u


def _is_head(row: dict[str, str]) -> bool:
    return _first(row, "quan_he_chu_ho").strip().lower() in ("chủ hộ", "chu ho", "chủ hộ gia đình")


def map_facility(path: str, n: int, row: dict[str, str], known: frozenset[str] | None) -> Unit:
    uid = _first(row, "id", "ma_don_vi")
    u = _unit("facilities", path, n, row, uid)
    p: list[Problem] = []
    require(row, ("id", "name", "kind"), f"dòng {n}", p)
    code = _first(row, "code", "facility_code", "ma_cskcb")
    if code:
        check_identifier("cskcb", code, "code", p)
    gln = _first(row, "gln")
    if gln:
        check_identifier("gln", gln, "gln", p)
    u.problems = p
    u.facility = code or None
    return u


MAPPERS = {
    "population": map_population,
    "insurance": map_insurance,
    "immunization": map_immunization,
    "station": map_station,
    "facilities": map_facility,
}


def write_facilities(conn: psycopg.Connection[Any], units: list[Unit]) -> int:
    """Upsert the good facility rows into ``unit`` (COPY into staging + one upsert)."""
    rows = []
    for u in units:
        if u.problems or not u.raw:
            continue
        r = orjson.loads(u.raw)
        kind = r.get("kind") or "clinic"
        rows.append(
            (
                r.get("id"),
                kind,
                r.get("name"),
                r.get("parent_id") or None,
                r.get("code") or None,
                r.get("gln") or None,
                r.get("province_code") or None,
                r.get("new_ward_code") or None,
                r.get("old_commune_code") or None,
                r.get("district_code") or None,
            )
        )
    if not rows:
        return 0
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS unit_stage (id text, kind text, name text, parent_id text,"
        " facility_code text, gln text, province_code text, commune_code text,"
        " commune_code_old text, district_code_old text) ON COMMIT DELETE ROWS"
    )
    with conn.cursor().copy("COPY unit_stage FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    res = conn.execute(
        """INSERT INTO unit AS u (id, kind, name, parent_id, facility_code, gln, province_code,
               commune_code, commune_code_old, district_code_old)
           SELECT DISTINCT ON (id) * FROM unit_stage
           ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
             parent_id = excluded.parent_id, facility_code = excluded.facility_code,
             gln = excluded.gln, province_code = excluded.province_code,
             commune_code = excluded.commune_code, commune_code_old = excluded.commune_code_old,
             district_code_old = excluded.district_code_old
           WHERE (u.kind, u.name, u.parent_id, u.facility_code, u.gln) IS DISTINCT FROM
                 (excluded.kind, excluded.name, excluded.parent_id, excluded.facility_code,
                  excluded.gln)"""
    )
    return res.rowcount


def read_bytes_as_file(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)
