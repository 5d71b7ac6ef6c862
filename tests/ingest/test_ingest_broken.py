"""A corpus of broken and hostile inputs: each gives a clear quarantine reason, never a crash."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hssk.db import Database
from hssk.ingest import jobstore, runner
from hssk.ingest.xmlparse import (
    XmlError,
    build_envelope,
    build_table,
    decode_hoso,
    iter_hoso_bytes,
    parse_table,
)
from tests.factories.samples import visit, write_feed

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<GIAMDINHHS><THONGTINDONVI><MACSKCB>&lol3;</MACSKCB></THONGTINDONVI></GIAMDINHHS>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<GIAMDINHHS><THONGTINDONVI><MACSKCB>&xxe;</MACSKCB></THONGTINDONVI></GIAMDINHHS>"""


def _one(db: Database, path: Path) -> jobstore.Summary:
    return runner.ingest(db, "xml130", [path], workers=0)


def _rules(s: jobstore.Summary) -> set[str]:
    return {e["rule"] for e in s.errors}


def test_truncated_file_keeps_what_came_before(idb: Database, tmp_path: Path) -> None:
    data = build_envelope("01001", [visit(i) for i in range(1, 5)])
    cut = data[: data.index(b"<HOSO>", data.index(b"</HOSO>")) + 300]  # inside the 2nd hồ sơ
    path = tmp_path / "cut.xml"
    path.write_bytes(cut)
    from hssk.ingest.kinds import xml130

    old, xml130.SMALL_FILE = xml130.SMALL_FILE, 0
    try:
        s = _one(idb, path)
    finally:
        xml130.SMALL_FILE = old
    assert s.stored["Encounter"] == 1
    assert _rules(s) & {"xml.truncated", "xml.syntax"}
    assert "cut.xml" in s.errors[0]["reason"]


@pytest.mark.parametrize(
    ("name", "data", "rule"),
    [
        ("laughs.xml", LAUGHS, "xml.dtd"),
        ("xxe.xml", EXTERNAL, "xml.dtd"),
        ("empty.xml", b"", "xml.syntax"),
        (
            "latin1.xml",
            "<?xml version='1.0' encoding='utf-8'?><GIAMDINHHS><A>Nguy\xean</A>".encode("latin-1"),
            "xml.encoding",
        ),
        ("root.xml", b"<?xml version='1.0'?><HOSO/>", "xml.root"),
    ],
)
def test_hostile_or_unreadable_file(
    idb: Database, tmp_path: Path, name: str, data: bytes, rule: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    s = _one(idb, path)
    assert s.stored == {}
    assert rule in _rules(s), s.errors
    assert all(e["reason"] for e in s.errors)


def test_bad_base64_and_bad_inner_table(idb: Database, tmp_path: Path) -> None:
    good = visit(1)
    bad64 = build_envelope("01001", [visit(2)]).replace(b"<NOIDUNGFILE>", b"<NOIDUNGFILE>!!", 1)
    path = tmp_path / "b64.xml"
    path.write_bytes(bad64)
    s = _one(idb, path)
    assert "xml.base64" in _rules(s)
    inner = dict(good)
    inner["XML2"] = b"<CHITIEU_CHITIET_THUOC><DSACH_CHI_TIET_THUOC><CHI_TIET_THUOC>"  # unclosed
    s = _one(idb, write_feed(tmp_path / "inner.xml", [inner]))
    assert _rules(s) & {"xml.truncated", "xml.syntax"}
    assert s.errors[0]["element"] == "XML2"


def test_huge_values_and_bad_lines(idb: Database, tmp_path: Path) -> None:
    visits = [
        visit(1, GHI_CHU="x" * 200_000),  # over the field limit
        visit(2, T_THUOC="1e30"),  # absurd amount
        visit(3),
    ]
    dup = visit(4, drugs=0)
    dup["XML2"] = build_table(
        "XML2",
        [{"MA_LK": "LK000004", "STT": "1", "MA_THUOC": "40.1", "TEN_THUOC": "A"}] * 2,
    )
    visits.append(dup)
    s = _one(idb, write_feed(tmp_path / "huge.xml", visits))
    rules = {e["record"]: e["rule"] for e in s.errors}
    assert rules["01001|LK000001"] == "xml.size"
    assert rules["01001|LK000002"] == "number.range"
    assert rules["01001|LK000004"] == "duplicate-key"
    assert s.stored["Encounter"] == 2  # visit 3 and visit 4 (minus its duplicated line)
    assert s.stored["MedicationRequest"] == 2 + 1


def test_quirks_of_real_exports_are_accepted(idb: Database, tmp_path: Path) -> None:
    v = visit(1)
    v["XML1"] = v["XML1"].replace(
        b"<TONG_HOP>",
        b'<TONG_HOP xmlns:xsi="http://www.w3.org/2001/XMLSchema instance">',
    )
    referral = {
        "MA_LK": "LK000001", "SO_CHUYENTUYEN": "CT1", "MA_CSKCB": "01001",
        "MA_NOI_DI": "01001", "MA_NOI_DEN": "01002", "HO_TEN": "A", "NGAY_RA": "202501021130",
        "MA_BENH_CHINH": "J06.9", "MA_LYDO_CT": "2",
    }  # fmt: skip
    xml13 = build_table("XML13", [referral]).replace(b"MA_NOI_DI>", b"MA_CSKCB_DI>")
    v["XML13"] = xml13.replace(b"MA_NOI_DEN>", b"MA_CSKCB_DEN>")  # 3176 names
    path = write_feed(tmp_path / "quirk.xml", [v])
    signed = b'<CHUKYDONVI><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/>'
    path.write_bytes(
        path.read_bytes().replace(b"<CHUKYDONVI/>", signed + b"</Signature></CHUKYDONVI>")
    )
    s = _one(idb, path)
    assert s.quarantined == 0, s.errors
    assert s.stored["ServiceRequest"] == 1
    with idb.connection() as conn:
        body = conn.execute("SELECT body FROM resource WHERE type = 'ServiceRequest'").fetchone()[0]
    assert body["performer"][0]["identifier"]["value"] == "01002"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_parser_only_raises_its_own_error(data: bytes) -> None:
    for payload in (data, b"<GIAMDINHHS>" + data, b"<?xml version='1.0'?>" + data):
        try:
            for h in iter_hoso_bytes(payload):
                decode_hoso(h)
        except XmlError as exc:
            assert exc.reason and exc.rule
        try:
            parse_table(payload, warnings=[])  # the declared-encoding check too
        except XmlError as exc:
            assert exc.reason


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_envelope_with_arbitrary_inner_content(text: str) -> None:
    b64 = base64.b64encode(text.encode("utf-8")).decode()
    env = (
        "<GIAMDINHHS><THONGTINDONVI><MACSKCB>01001</MACSKCB></THONGTINDONVI><THONGTINHOSO>"
        f"<DANHSACHHOSO><HOSO><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>{b64}"
        "</NOIDUNGFILE></FILEHOSO></HOSO></DANHSACHHOSO></THONGTINHOSO></GIAMDINHHS>"
    ).encode()
    for h in iter_hoso_bytes(env):
        decode_hoso(h)
        assert h.tables or h.errors


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.booleans())
def test_dates_never_crash_and_give_fhir_dates(value: str, partial: bool) -> None:
    from hssk.ingest.model import Problem, parse_time
    from hssk.records.extract import parse_fhir_datetime

    problems: list[Problem] = []
    out = parse_time(value, "NGAY", problems, allow_partial=partial)
    if out is None:
        assert problems or not value.strip()
    else:
        assert not problems and parse_fhir_datetime(out) is not None


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("202501021030", "2025-01-02T10:30:00+07:00"),
        ("20250102", "2025-01-02"),
        ("2025010299", None),  # 10 digits: neither a date nor a time
        ("202502301000", None),  # 30 February
        ("202501022460", None),
    ],
)
def test_date_forms(value: str, want: str | None) -> None:
    from hssk.ingest.model import Problem, parse_time

    problems: list[Problem] = []
    assert parse_time(value, "NGAY_VAO", problems) == want
    assert bool(problems) == (want is None)


@pytest.mark.parametrize("visits", [1, 40])
def test_whole_and_streamed_reading_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, visits: int
) -> None:
    """Small envelope files are read at once, large ones streamed through the quirk filter:
    both give the same hồ sơ, the malformed xsi namespace of real exports included."""
    from hssk.ingest import xmlparse

    data = build_envelope("01001", [visit(i) for i in range(1, visits + 1)])
    data = data.replace(b"XMLSchema-instance", b"XMLSchema instance")
    path = tmp_path / "env.xml"
    path.write_bytes(data)

    def read() -> list[tuple[int, str, dict[str, list[dict[str, str]]]]]:
        return [(h.index, h.facility, decode_hoso(h).tables) for h in xmlparse.iter_hoso(str(path))]

    whole = read()
    monkeypatch.setattr(xmlparse, "WHOLE_FILE_BYTES", 0)
    assert read() == whole
    assert len(whole) == visits and whole[-1][2]["XML1"][0]["MA_LK"] == f"LK{visits:06d}"
