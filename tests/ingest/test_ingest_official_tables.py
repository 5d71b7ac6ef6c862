"""Every table of the official QĐ 4750 appendix: layouts held against the appendix as data,
length and type breaches named, XML6/8/10/11/13–15 ingested end to end, XML12 refused, the
XML8 treatment summary in the book and the catalogs, references that resolve."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from hssk.access import Actor
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.catalog import bundle as catalog_bundle
from hssk.catalog import catalogs, completeness
from hssk.db import Database
from hssk.ingest import jobstore, runner
from hssk.ingest.map_xml130 import _check_fields, check_layout
from hssk.ingest.xml130_tables import LENGTH_AMENDMENTS, REFUSED, appendix, limits, tables
from hssk.ingest.xmlparse import XmlError, build_table, iter_hoso_bytes, parse_table, readable
from hssk.kernel.config import load_settings
from tests.factories.samples import visit, write_feed

DATA = Path(__file__).resolve().parents[2] / "hssk/ingest/data"
SPEC = Path(__file__).resolve().parents[3] / "shared/spec/qd4750-fields.csv"
LK = "LK000001"


def _appendix_rows() -> list[dict[str, str]]:
    with (DATA / "qd4750-fields.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_layout_is_the_appendix() -> None:
    rows = _appendix_rows()
    assert len(rows) == 481
    by_table: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_table.setdefault(r["table"], []).append(r)
    assert sorted(by_table, key=lambda n: int(n[3:])) == [f"XML{i}" for i in range(16)]
    assert list(appendix()) == list(by_table)
    for name, fields in by_table.items():
        fields.sort(key=lambda r: int(r["order"]))
        expected = [r["field"] for r in fields]
        if name in REFUSED:
            assert name not in tables()
        else:
            assert list(tables()[name].fields) == expected, name
        assert [f.name for f in appendix()[name]] == expected
        for r in fields:
            size, number = limits(name)[r["field"]]
            appendix_size = None if r["max_len"] == "n" else int(r["max_len"])
            amended = LENGTH_AMENDMENTS.get((name, r["field"]))
            assert size == (amended or appendix_size), (name, r)
            assert amended is None or r["amended_by_qd4750"] == "yes" or r["field"] == "MUC_HUONG"
            assert number == (r["type_after_qd4750"] == "Số"), (name, r)
    assert set(tables()) | set(REFUSED) == set(by_table)
    # the XML6 tail of the appendix (it differed before)
    assert tables()["XML6"].fields[-6:] == (
        "MA_BAC_PHAC_DO", "SO_NGAY_CAP_THUOC_ARV", "NGAY_CHUYEN_PHAC_DO",
        "LY_DO_CHUYEN_PHAC_DO", "MA_CSKCB", "DU_PHONG",
    )  # fmt: skip
    # the real exports of the observed sample agree with the appendix
    observed = json.loads((DATA / "xml130-observed-structure.json").read_text("utf-8"))
    for name, info in observed["tables"].items():
        assert tuple(info["fields_in_order_seen"]) == tables()[name].fields, name


@pytest.mark.skipif(not SPEC.exists(), reason="the shared spec is not beside the checkout")
def test_packaged_appendix_is_the_spec_copy() -> None:
    assert (DATA / "qd4750-fields.csv").read_bytes() == SPEC.read_bytes()


def _ingest(db: Database, tmp_path: Path, visits: list[dict[str, bytes]]) -> jobstore.Summary:
    return runner.ingest(db, "xml130", [write_feed(tmp_path / "f.xml", visits)], workers=0)


def test_length_and_type_breaches_name_the_field(idb: Database, tmp_path: Path) -> None:
    too_long = visit(1, HO_TEN="Nguyễn " * 40)  # 280 characters, HO_TEN is C255
    bad_line = visit(2, drugs=0)
    bad_line["XML2"] = build_table("XML2", [
        {"MA_LK": "LK000002", "STT": "1", "MA_THUOC": "40.17", "TEN_THUOC": "A", "SO_LUONG": "10"},
        {"MA_LK": "LK000002", "STT": "2", "MA_THUOC": "40.17", "TEN_THUOC": "B",
         "SO_LUONG": "mười"},  # Số
        {"MA_LK": "LK000002", "STT": "3", "MA_THUOC": "40.17", "TEN_THUOC": "C",
         "DUONG_DUNG": "1.01.2"},  # C4
    ])  # fmt: skip
    s = _ingest(idb, tmp_path, [too_long, bad_line])
    got = {(e["record"], e["element"]): e for e in s.errors}
    head = got[("01001|LK000001", "HO_TEN")]
    assert head["rule"] == "field.length" and "255" in head["reason"] and "HO_TEN" in head["reason"]
    assert "HO_TEN" in head["reason_vi"] and "phụ lục QĐ 4750" in head["reason_vi"]
    assert got[("01001|LK000002", "SO_LUONG")]["rule"] == "number"
    assert "SO_LUONG" in got[("01001|LK000002", "SO_LUONG")]["reason"]
    assert got[("01001|LK000002", "DUONG_DUNG")]["rule"] == "field.length"
    assert s.quarantined == 3
    assert s.stored["Encounter"] == 1 and s.stored["MedicationRequest"] == 1  # visit 2, line 1


def test_xml12_is_refused_with_its_reason(idb: Database, tmp_path: Path) -> None:
    v = visit(1)
    v["XML12"] = b"<GIAM_DINH><HO_TEN>A</HO_TEN></GIAM_DINH>"
    s = _ingest(idb, tmp_path, [v])
    assert s.quarantined == 1 and not s.stored
    (e,) = s.errors
    assert e["rule"] == "xml.loaihoso" and e["element"] == "XML12"
    assert "portal" in e["reason"] and "cổng giám định BHXH" in e["reason_vi"]


def _official_visit() -> dict[str, bytes]:
    v = visit(1, MA_LOAI_KCB="03", LY_DO_VV="Sốt cao 3 ngày", NGAY_VAO="202501021030",
              NGAY_RA="202501061130", MA_LOAI_RV="2")  # fmt: skip
    v["XML6"] = build_table("XML6", [{
        "MA_LK": LK, "NGAYKD_HIV": "20240101", "BDDT_ARV": "20240115", "MA_CSKCB": "01001",
        "MA_PHAC_DO_DIEU_TRI": "TDF+3TC+DTG", "MA_BAC_PHAC_DO": "1",
        "SO_NGAY_CAP_THUOC_ARV": "90", "NGAY_CHUYEN_PHAC_DO": "20241001",
        "LY_DO_CHUYEN_PHAC_DO": "2",
    }])  # fmt: skip
    v["XML8"] = build_table("XML8", [{
        "MA_LK": LK, "MA_LOAI_KCB": "03", "DON_VI": "Bệnh viện 01001",
        "NGAY_VAO": "202501021030", "NGAY_RA": "202501061130",
        "CHAN_DOAN_VAO": "Sốt chưa rõ nguyên nhân", "CHAN_DOAN_RV": "Viêm phổi <thùy> & sốt",
        "QT_BENHLY": "Sốt 39 độ, ho đờm; điều trị kháng sinh, hết sốt sau 48 giờ",
        "TOMTAT_KQ": "X-quang: đám mờ thùy dưới phổi phải; CRP 80 mg/L",
        "PP_DIEUTRI": "Kháng sinh tĩnh mạch 5 ngày", "KET_QUA_DTRI": "2",
        "GHI_CHU": "Tái khám sau 2 tuần", "MA_TTDV": "0101000001", "NGAY_CT": "20250106",
    }])  # fmt: skip
    v["XML10"] = build_table("XML10", [{
        "MA_LK": LK, "SO_SERI": "NDT-001", "SO_CT": "15/2025", "SO_NGAY": "30",
        "DON_VI": "Công ty A", "CHAN_DOAN_RV": "Dọa sảy thai", "TU_NGAY": "20250106",
        "DEN_NGAY": "20250204", "MA_TTDV": "0101000001", "TEN_BS": "Lê Văn Bác",
        "MA_BS": "001234/HNO-CCHN", "NGAY_CT": "20250106",
    }])  # fmt: skip
    v["XML11"] = build_table("XML11", [{
        "MA_LK": LK, "SO_CT": "16/2025", "SO_SERI": "CT07-0001", "SO_KCB": "K-1",
        "DON_VI": "Công ty A", "MA_BHXH": "0101234567", "CHAN_DOAN_RV": "Viêm phổi",
        "PP_DIEUTRI": "Kháng sinh", "SO_NGAY_NGHI": "5", "TU_NGAY": "20250102",
        "DEN_NGAY": "20250106", "MA_TTDV": "0101000001", "MA_BS": "001234/HNO-CCHN",
        "NGAY_CT": "20250106", "MAU_SO": "CT07",
    }])  # fmt: skip
    v["XML13"] = build_table("XML13", [{
        "MA_LK": LK, "SO_HOSO": "HS1", "SO_CHUYENTUYEN": "CT1", "GIAY_CHUYEN_TUYEN": "G1",
        "MA_CSKCB": "01001", "MA_NOI_DI": "01001", "MA_NOI_DEN": "01002", "HO_TEN": "A",
        "NGAY_RA": "202501061130", "DAU_HIEU_LS": "Ho", "QT_BENHLY": "x", "TOMTAT_KQ": "y",
        "TEN_DICH_VU": "Chụp X-quang", "MA_BENH_CHINH": "J18.9", "MA_LYDO_CT": "2",
        "HUONG_DIEU_TRI": "Điều trị tiếp", "PHUONGTIEN_VC": "Xe cứu thương",
        "MA_BAC_SI": "001234", "MA_TTDV": "0101000001",
    }])  # fmt: skip
    v["XML14"] = build_table("XML14", [{
        "MA_LK": LK, "SO_GIAYHEN_KL": "H1", "MA_CSKCB": "01001", "HO_TEN": "A",
        "NGAY_HEN_KL": "202501201000", "MA_BENH_CHINH": "J18.9", "MA_BAC_SI": "001234",
        "MA_TTDV": "0101000001", "NGAY_CT": "20250106",
    }])  # fmt: skip
    v["XML15"] = build_table("XML15", [{
        "MA_LK": LK, "STT": "1", "MA_BN": "BN000001", "PHANLOAI_LAO_VITRI": "1",
        "PHANLOAI_LAO_TS": "1", "PHANLOAI_LAO_HIV": "1", "PHANLOAI_LAO_VK": "1",
        "PHANLOAI_LAO_KT": "1", "LOAI_DTRI_LAO": "1", "NGAYBD_DTRI_LAO": "20240201",
        "PHACDO_DTRI_LAO": "1", "KET_QUA_DTRI_LAO": "1", "BDDT_ARV": "20240115",
        "NGAY_BAT_DAU_DT_CTX": "20240115",
    }])  # fmt: skip
    return v


def _bodies(db: Database, rtype: str) -> list[tuple[dict[str, Any], str | None, int]]:
    with db.connection() as conn:
        return [
            (r[0], r[1], r[2])
            for r in conn.execute(
                "SELECT body, sensitivity, person_id FROM resource WHERE type = %s ORDER BY id",
                (rtype,),
            )
        ]


def test_official_tables_end_to_end(idb: Database, tmp_path: Path) -> None:
    s = _ingest(idb, tmp_path, [_official_visit()])
    assert s.quarantined == 0, s.errors
    assert s.stored["Composition"] == 1
    assert s.stored["DocumentReference"] == 4  # XML8, XML10, XML11, XML13 papers
    assert s.stored["ServiceRequest"] == 1 and s.stored["Appointment"] == 1
    assert s.stored["Condition"] == 3 + 1  # diagnoses + tuberculosis treatment
    ((enc, _, pid),) = _bodies(idb, "Encounter")
    # XML6: the appendix's tail is kept, still sensitive
    (hiv,) = [b for b in _bodies(idb, "Observation") if b[1] == "HIV"]
    parts = {c["code"]["coding"][0]["code"]: c for c in hiv[0]["component"]}
    assert parts["ma-phac-do-dieu-tri"]["valueString"] == "TDF+3TC+DTG"
    assert parts["so-ngay-cap-thuoc-arv"]["valueQuantity"]["value"] == 90
    assert parts["ngay-chuyen-phac-do"]["valueDateTime"] == "2024-10-01"
    assert parts["ly-do-chuyen-phac-do"]["valueString"] == "2"
    assert "MA_BAC_PHAC_DO=1" in hiv[0]["valueString"]
    # XML10 / XML11: documents with their fields as data
    docs = {d["type"]["coding"][0]["code"]: d for d, _, _ in _bodies(idb, "DocumentReference")}
    leave = docs["giay-nghi-viec-bhxh"]
    assert leave["context"]["period"] == {"start": "2025-01-02", "end": "2025-01-06"}
    assert {i["value"] for i in leave["identifier"]} == {"16/2025", "CT07-0001", "K-1"}
    fields = {e["url"]: e["valueString"] for e in leave["extension"][0]["extension"]}
    assert fields["SO_NGAY_NGHI"] == "5" and fields["MAU_SO"] == "CT07"
    pregnancy = docs["giay-nghi-duong-thai"]
    assert pregnancy["authenticator"]["display"] == "Lê Văn Bác"
    assert pregnancy["context"]["period"]["end"] == "2025-02-04"
    # XML8: the treatment summary, linked to its visit
    ((comp, _, comp_pid),) = _bodies(idb, "Composition")
    assert comp_pid == pid and comp["encounter"]["reference"] == f"Encounter/{enc['id']}"
    sections = {x["code"]["coding"][0]["code"]: x for x in comp["section"]}
    assert set(sections) == {"10164-2", "8648-8", "30954-2", "18776-5", "11535-2", "69730-0"}
    assert "Sốt cao 3 ngày" in sections["10164-2"]["text"]["div"]
    assert "Viêm phổi &lt;thùy&gt; &amp; sốt" in sections["11535-2"]["text"]["div"]
    assert "Đỡ" in sections["11535-2"]["text"]["div"]
    # XML13–15
    ((sr, _, _),) = _bodies(idb, "ServiceRequest")
    assert sr["performer"][0]["identifier"]["value"] == "01002"
    ((appt, _, _),) = _bodies(idb, "Appointment")
    assert appt["start"].startswith("2025-01-20T10:00")
    tb = [b for b, _, _ in _bodies(idb, "Condition") if b["code"]["coding"][0]["code"] == "lao"]
    assert tb and tb[0]["onsetDateTime"] == "2024-02-01"
    # every reference to the person is the golden record's
    with idb.connection() as conn:
        refs = {
            r[0]
            for r in conn.execute(
                "SELECT coalesce(body->'subject'->>'reference', body->'patient'->>'reference')"
                " FROM resource WHERE person_id IS NOT NULL AND type <> 'Appointment'"
            )
        }
    assert refs == {f"Patient/mpi-{pid}"}
    assert appt["participant"][0]["actor"]["reference"] == f"Patient/mpi-{pid}"


def _token(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue(load_settings(), actor)}"}


def test_summary_in_the_book_and_completeness(idb: Database, tmp_path: Path) -> None:
    s = _ingest(idb, tmp_path, [_official_visit()])
    assert s.quarantined == 0, s.errors
    ((_, _, pid),) = _bodies(idb, "Encounter")
    with idb.connection() as conn:
        bundle = catalog_bundle.bundles(conn, [pid])[pid]
    values = catalogs.get("qd1332").extract(bundle)
    for code in ("tt.benh_su", "tt.dien_bien", "tt.cls_co_gia_tri", "tt.phuong_phap_dieu_tri",
                 "tt.loi_dan"):  # fmt: skip
        assert values[code], code
    citizen = Actor("citizen-test", "citizen", person_id=pid, scopes=frozenset({"patient/*.read"}))
    with TestClient(create_app(load_settings(), idb)) as client:
        r = client.get("/api/v1/me/book?v=1", headers=_token(citizen))
        assert r.status_code == 200, r.text
        (summary,) = r.json()["summaries"]
        assert summary["title"] == "Tóm tắt hồ sơ bệnh án"
        titles = dict(summary["sections"])
        assert titles["Tình trạng người bệnh ra viện"].startswith(
            "Chẩn đoán ra viện: Viêm phổi <thùy> & sốt"
        )
        assert summary["visit_id"]
        # XML10 / XML11: the leave certificates are papers of the book
        docs = {d["title"]: d for d in r.json()["documents"]}
        sick = docs["Giấy chứng nhận nghỉ việc hưởng BHXH"]
        assert sick["leave_days"] == "5" and sick["leave_from"].startswith("2025-01-0")
        assert sick["diagnosis"] == "Viêm phổi" and sick["number"]
        assert docs["Giấy nghỉ dưỡng thai"]["doctor"] == "Lê Văn Bác"
        page = client.get(f"/book/p/{pid}", headers=_token(citizen))
        assert page.status_code == 200 and "Giấy nghỉ dưỡng thai" in page.text
        assert "(5 ngày)" in page.text and "Tóm tắt hồ sơ bệnh án" in page.text


def test_the_xml8_summary_moves_completeness(idb: Database, tmp_path: Path) -> None:
    """The same visit without, then with its XML8: the treatment-summary fields of the
    catalogs become filled and the person's score rises by them."""
    summary_codes = {"tt.benh_su", "tt.dien_bien", "tt.cls_co_gia_tri", "tt.phuong_phap_dieu_tri"}

    def scored(folder: Path, visit_tables: dict[str, bytes]) -> tuple[int, set[str]]:
        with idb.connection() as conn:
            conn.execute("TRUNCATE resource, resource_locator CASCADE")
        folder.mkdir()
        s = _ingest(idb, folder, [visit_tables])
        assert s.quarantined == 0, s.errors
        ((_, _, pid),) = _bodies(idb, "Encounter")
        with idb.connection() as conn:
            bundle = catalog_bundle.bundles(conn, [pid])[pid]
        ((_, _, _, filled, _, missing),) = completeness.score(
            [catalogs.get("qd1332")], {pid: bundle}
        )
        return filled, set(missing)

    without = {k: v for k, v in _official_visit().items() if k != "XML8"}
    before, missing_before = scored(tmp_path / "without", without)
    after, missing_after = scored(tmp_path / "with", _official_visit())
    assert summary_codes <= missing_before
    assert not summary_codes & missing_after
    assert after >= before + len(summary_codes)


def test_references_resolve_in_either_form(idb: Database, tmp_path: Path) -> None:
    s = _ingest(idb, tmp_path, [visit(1)])
    assert s.quarantined == 0, s.errors
    ((_, _, pid),) = _bodies(idb, "Encounter")
    system = Actor("platform", "system", scopes=frozenset({"system/*.read", "system/*.write"}))
    h = _token(system)
    with TestClient(create_app(load_settings(), idb)) as client:
        obs = client.get("/fhir/Observation", params={"patient": f"Patient/mpi-{pid}"}, headers=h)
        assert obs.status_code == 200 and obs.json()["total"] == 2
        ref = obs.json()["entry"][0]["resource"]["subject"]["reference"]
        assert ref == f"Patient/mpi-{pid}"
        assert client.get(f"/fhir/{ref}", headers=h).status_code == 200
        for form in (f"Patient/{pid}", str(pid), f"mpi-{pid}"):  # older records' form too
            found = client.get("/fhir/Observation", params={"subject": form}, headers=h)
            assert found.status_code == 200 and found.json()["total"] == 2, form
        assert client.get("/fhir/Observation", params={"patient": "Patient/999999"},
                          headers=h).json()["total"] == 0  # fmt: skip


# --- a declared encoding that the bytes contradict ------------------------------------------
VIETNAMESE = "ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
_LATIN1_DECLS = ("ISO-8859-1", "iso-8859-1", "latin1", "windows-1252")


def _table(text: str, declared: str, encoding: str = "utf-8") -> bytes:
    xml = build_table("XML5", [{"MA_LK": LK, "STT": "1", "DIEN_BIEN_LS": text}], cdata=False)
    xml = xml.replace(b'encoding="utf-8"', f'encoding="{declared}"'.encode())
    return xml.decode("utf-8").encode(encoding)


def _read(data: bytes) -> tuple[str | None, list[XmlError]]:
    notes: list[XmlError] = []
    data = readable(data, "bảng XML5", notes)
    (row,) = parse_table(data, "XML5")
    return row["DIEN_BIEN_LS"], notes


def test_latin1_declaration_over_utf8_is_read_as_utf8(idb: Database, tmp_path: Path) -> None:
    v = visit(1, drugs=0, services=0, labs=0)
    v["XML5"] = _table("Chẩn đoán: viêm phổi", "ISO-8859-1")
    s = _ingest(idb, tmp_path, [v])
    assert s.quarantined == 0, s.errors
    ((note, _, _),) = [(b, x, y) for b, x, y in _bodies(idb, "Observation")]
    assert note["valueString"] == "Chẩn đoán: viêm phổi"  # not "Cháº©n ÄoÃ¡n"
    (warning,) = s.errors
    assert warning["status"] == "noted" and warning["rule"] == "xml.encoding"
    assert "ISO-8859-1" in warning["reason"].upper() and warning["element"] == "XML5"
    # ambiguous bytes (only Latin-1 letters, both readings plausible) are held back
    v["XML5"] = _table("Cà Mau", "ISO-8859-1")
    s = _ingest(idb, tmp_path, [v])
    assert s.quarantined == 1 and s.errors[0]["rule"] == "xml.encoding"
    assert "cannot be told" in s.errors[0]["reason"]


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=VIETNAMESE + "abcxyz 0123456789,.;:-", min_size=1, max_size=60).filter(
        lambda t: any(ord(c) > 0xFF for c in t) and t.strip() == t
    ),
    st.sampled_from(_LATIN1_DECLS),
)
def test_utf8_under_a_latin1_declaration_reads_back_exactly(text: str, declared: str) -> None:
    got, notes = _read(_table(text, declared))
    assert got == text
    assert len(notes) == 1 and notes[0].rule == "xml.encoding"


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="<&]"),
        max_size=60,
    ).filter(lambda t: t.strip() == t),
    st.sampled_from(("ISO-8859-1", "latin1")),
)
def test_latin1_text_is_never_garbled(text: str, declared: str) -> None:
    """Genuine Latin-1 bytes come back as written, or are refused (or, only when they happen
    to be valid UTF-8 of letters beyond Latin-1, read as UTF-8 with a note): never silently
    read otherwise than declared."""
    data = _table(text, declared, "latin-1")
    try:
        got, notes = _read(data)
    except XmlError as exc:
        assert exc.rule == "xml.encoding"
        return
    if notes:  # the Latin-1 bytes happen to be valid UTF-8 of letters beyond Latin-1
        assert got is not None and any(ord(c) > 0xFF for c in got)
        assert got in data.decode("utf-8")
    else:
        assert got == text


def test_mixed_encodings_are_refused() -> None:
    data = _table("Chẩn đoán", "ISO-8859-1").replace(b"</MA_LK>", "é</MA_LK>".encode("latin-1"))
    with pytest.raises(XmlError) as exc:
        _read(data)
    assert exc.value.rule == "xml.encoding" and "mixes" in exc.value.reason


def test_fhir_input_may_refer_to_the_golden_record(idb: Database, tmp_path: Path) -> None:
    """A resource sent back with the reference HSSK wrote (Patient/mpi-N) joins person N."""
    s = _ingest(idb, tmp_path, [visit(1)])
    ((_, _, pid),) = _bodies(idb, "Encounter")
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"text": "Nhịp tim"}, "valueQuantity": {"value": 72, "unit": "/min"}}  # fmt: skip
    lines = [
        {**obs, "subject": {"reference": f"Patient/mpi-{pid}"}},
        {**obs, "id": "o2", "subject": {"reference": "Patient/mpi-999999"}},
    ]
    (tmp_path / "o.ndjson").write_text("\n".join(json.dumps(x) for x in lines), "utf-8")
    s = runner.ingest(idb, "fhir", [tmp_path / "o.ndjson"], workers=0)
    assert s.stored == {"Observation": 1}
    assert s.quarantined == 1 and s.errors[0]["rule"] == "patient.unknown"
    with idb.connection() as conn:
        got = conn.execute(
            "SELECT person_id, body FROM resource WHERE type = 'Observation'"
            " AND body->'code'->>'text' = 'Nhịp tim'"
        ).fetchone()
    assert got[0] == pid and got[1]["subject"]["reference"] == f"Patient/mpi-{pid}"


_VALUES = st.one_of(
    st.from_regex(r"[+-]?\d{0,6}([.,]\d{0,4})?", fullmatch=True),
    st.sampled_from(["", "nan", "1e5", "1_000", "1\x01", "12.5.1", "-", ".", "x" * 300]),
    st.text(max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(tables())),
    st.data(),
)
def test_layout_check_fast_path_agrees_with_the_field_by_field_one(table: str, data: Any) -> None:
    names = data.draw(st.lists(st.sampled_from((*tables()[table].fields, "EXTRA")), unique=True))
    row = {n: data.draw(_VALUES) for n in names}
    fast: list[Any] = []
    slow: list[Any] = []
    check_layout(table, row, "t", fast)
    _check_fields(table, row, "t", slow)
    assert [(p.rule, p.element) for p in fast] == [(p.rule, p.element) for p in slow]


def test_a_bare_checkin_table_is_read_the_same_way() -> None:
    row = {"MA_LK": LK, "STT": "1", "HO_TEN": "Trần Thị Hường", "MA_CSKCB": "01001"}
    data = build_table("XML0", [row]).replace(b'encoding="utf-8"', b'encoding="ISO-8859-1"')
    (hoso,) = list(iter_hoso_bytes(data))
    assert hoso.tables["XML0"][0]["HO_TEN"] == "Trần Thị Hường"
    ((table, note),) = hoso.warnings
    assert table == "XML0" and note.rule == "xml.encoding"
