"""Generated files: manifest, XML structure (QĐ 130), clinical sense, truth, determinism."""

from __future__ import annotations

import base64
import csv
import hashlib
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from hssk.ingest.xml130_tables import LEGACY_4210_FIELDS, QD4750_FROM, legacy_table, tables
from hssk.ingest.xmlparse import parse_table
from hssk.kernel.identifiers import check_bhyt, check_cccd
from hssk.synth import Manifest, generate
from hssk.synth.errors import ErrorModel
from hssk.synth.feeds import covid_vaccines
from hssk.synth.xmlgen import XSI_QUIRK

RECOVER = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
STRICT = etree.XMLParser(resolve_entities=False, no_network=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    out = tmp_path_factory.mktemp("synth")
    return out, generate(out, 1500, "01", seed=5, quirk_rate=0.3)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def inner_files(path: Path) -> dict[str, etree._Element]:
    env = etree.parse(str(path), STRICT).getroot()
    assert env.tag == "GIAMDINHHS"
    assert env.findtext("THONGTINDONVI/MACSKCB") == path.parts[-3]
    assert env.findtext("THONGTINHOSO/SOLUONGHOSO") == "1"
    assert len(env.findtext("THONGTINHOSO/NGAYLAP")) == 8
    assert env.find("CHUKYDONVI") is not None
    out = {}
    for fh in env.iterfind("THONGTINHOSO/DANHSACHHOSO/HOSO/FILEHOSO"):
        data = base64.b64decode(fh.findtext("NOIDUNGFILE"))
        out[fh.findtext("LOAIHOSO")] = etree.fromstring(data, RECOVER)
    return out


def modern(path: Path) -> bool:
    """A hồ sơ exported under QĐ 130/4750 (its visit ended on or after 1 July 2024)."""
    return path.parts[-2] >= QD4750_FROM


def records(name: str, root: etree._Element) -> list[etree._Element]:
    table = tables()[name]
    assert root.tag == table.root
    if table.single:
        return [root]
    found = root.findall("/".join(table.record_path.split("/")[1:]))
    assert found, f"{name}: no rows at {table.record_path}"
    return found


def test_manifest_counts_equal_files(run: tuple[Path, Manifest]) -> None:
    out, manifest = run
    assert Manifest.load(out / "manifest.json").counts == manifest.counts
    assert manifest.truth == {
        "source_records": "truth/source_records.csv",
        "persons": "truth/persons.csv",
    }
    for entry in manifest.files:
        path = out / entry.path
        if entry.format == "csv":
            assert len(rows(path)) == entry.records, entry.path
        else:
            files = list(path.rglob("*.xml"))
            assert len(files) == entry.files == entry.records, entry.path
    assert manifest.counts["persons"] == 1500
    truth = rows(out / "truth/source_records.csv")
    assert manifest.counts["source_records"] == len(truth)
    kinds = {e.kind for e in manifest.files}
    assert {
        "population",
        "insurance",
        "immunization",
        "station",
        "his",
        "checkin",
        "facilities",
    } <= kinds


def test_xml_matches_table_structure(run: tuple[Path, Manifest]) -> None:
    out, _ = run
    seen: Counter[str] = Counter()
    for path in sorted(p for p in (out / "his").rglob("*.xml") if modern(p)):
        files = inner_files(path)
        ma_lk = path.stem
        assert {"XML1", "XML3"} <= set(files)
        for name, root in files.items():
            fields = set(tables()[name].fields)
            for rec in records(name, root):
                tags = [c.tag for c in rec]
                assert set(tags) <= fields, (name, set(tags) - fields)
                assert rec.findtext("MA_LK") == ma_lk
            seen[name] += 1
        xml1 = files["XML1"]
        for f in ("NGAY_VAO", "NGAY_RA"):
            assert len(xml1.findtext(f)) == 12 and xml1.findtext(f).isdigit()
        assert xml1.findtext("MA_CSKCB") == path.parts[-3]
        seen["upper" if xml1.findtext("HO_TEN").isupper() else "mixed"] += 1
        assert xml1.findtext("NGAY_RA")[:8] == path.parts[-2]
    assert {"XML1", "XML2", "XML3", "XML4", "XML5", "XML7", "XML8", "XML14"} <= set(seen)
    assert 0.05 < seen["upper"] / seen["XML1"] < 0.5  # some HIS write names in capitals
    for path in list((out / "checkin").rglob("*.xml"))[:300]:
        root = etree.parse(str(path), RECOVER).getroot()
        (rec,) = records("XML0", root)
        assert rec.findtext("MA_LK") == path.stem
        assert root.find("CHUKYDONVI") is not None


def test_clinical_sense(run: tuple[Path, Manifest]) -> None:
    out, _ = run
    checked: Counter[str] = Counter()
    for path in (p for p in (out / "his").rglob("*.xml") if modern(p)):
        files = inner_files(path)
        xml1 = files["XML1"]
        icd = xml1.findtext("MA_BENH_CHINH")
        drugs = (
            {r.findtext("TEN_THUOC") for r in records("XML2", files["XML2"])}
            if "XML2" in files
            else set()
        )
        labs = (
            {r.findtext("MA_CHI_SO"): r for r in records("XML4", files["XML4"])}
            if "XML4" in files
            else {}
        )
        if icd == "I10":
            assert drugs & {"Amlodipin", "Losartan"}
        elif icd == "E11":
            assert "Metformin" in drugs and 7.0 <= float(labs["GLU"].findtext("GIA_TRI")) <= 15.5
        elif icd == "A90":
            assert float(labs["PLT"].findtext("GIA_TRI")) < 150
        elif icd == "J18.9":
            assert float(labs["CRP"].findtext("GIA_TRI")) > 10 and "Ceftriaxon" in drugs
        elif icd == "O80":
            assert "XML9" in files and xml1.findtext("GIOI_TINH") == "2"
            (birth,) = records("XML9", files["XML9"])
            assert check_bhyt(birth.findtext("MA_THE_TAM")).ok
        if xml1.findtext("MA_LOAI_RV") in ("2", "5"):
            assert "XML13" in files
        assert ("XML5" in files) == (xml1.findtext("MA_LOAI_KCB") == "03")
        money = {
            f: int(xml1.findtext(f))
            for f in ("T_TONGCHI_BV", "T_TONGCHI_BH", "T_BNCCT", "T_BHTT", "T_THUOC")
        }
        assert money["T_BHTT"] == money["T_TONGCHI_BH"] - money["T_BNCCT"]
        lines = [r for n in ("XML2", "XML3") if n in files for r in records(n, files[n])]
        assert money["T_TONGCHI_BV"] == sum(int(r.findtext("THANH_TIEN_BV")) for r in lines)
        checked[icd] += 1
    assert {"I10", "J06.9"} <= set(checked)


def test_quirks_present_and_parseable(tmp_path: Path) -> None:
    generate(tmp_path, 150, "01", seed=9, quirk_rate=1.0, errors=ErrorModel.none())
    crlf = ns = cdata = 0
    for path in (tmp_path / "his").rglob("*.xml"):
        raw = path.read_bytes()
        crlf += b"\r\n" in raw
        for fh in etree.fromstring(raw, STRICT).iterfind(".//FILEHOSO"):
            inner = base64.b64decode(fh.findtext("NOIDUNGFILE")).decode("utf-8")
            if XSI_QUIRK in inner:
                ns += 1
                assert etree.fromstring(inner.encode(), RECOVER) is not None
            cdata += "<![CDATA[" in inner
    assert crlf and ns and cdata


def test_truth_links_every_record(run: tuple[Path, Manifest]) -> None:
    out, _ = run
    persons = {r["person_key"]: r for r in rows(out / "truth/persons.csv")}
    truth = rows(out / "truth/source_records.csv")
    ids = defaultdict(set)
    for t in truth:
        assert t["person_key"] in persons
        ids[t["source"]].add(t["record_id"])
    assert ids["population"] == {r["ma_ban_ghi"] for r in rows(out / "population/dan_cu.csv")}
    assert ids["insurance"] == {r["ma_ban_ghi"] for r in rows(out / "insurance/bhyt.csv")}
    assert ids["immunization"] == {
        r["ma_ban_ghi"] for r in rows(out / "immunization/tiem_chung.csv")
    }
    assert ids["station"] == {r["ma_ban_ghi"] for r in rows(out / "station/tram_y_te.csv")}
    his = {f"his:{p.parts[-3]}:{p.stem}" for p in (out / "his").rglob("*.xml")}
    assert ids["his"] == his
    for p in persons.values():
        if p["cccd"]:
            assert check_cccd(p["cccd"], birth_year=int(p["birth_date"][:4]), sex=p["sex"]).ok


def test_immunization_coverage(run: tuple[Path, Manifest]) -> None:
    out, _ = run
    persons = {r["person_key"]: r for r in rows(out / "truth/persons.csv")}
    truth = {r["record_id"]: r["person_key"] for r in rows(out / "truth/source_records.csv")}
    doses: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for r in rows(out / "immunization/tiem_chung.csv"):
        doses[truth[r["ma_ban_ghi"]]].add((r["ma_vac_xin"], int(r["mui_so"])))
        assert date(2017, 1, 1) <= date.fromisoformat(r["ngay_tiem"]) <= date(2026, 6, 30)
    kids = [
        k
        for k, p in persons.items()
        if "2022-01-01" <= p["birth_date"] <= "2024-01-01" and not p["death_date"]
    ]
    pentavalent = sum(("DPT-VGB-Hib", 3) in doses[k] for k in kids) / len(kids)
    measles = sum(("SOI", 1) in doses[k] for k in kids) / len(kids)
    assert 0.7 < pentavalent < 0.97 and 0.7 < measles < 0.98
    adults = [
        k for k, p in persons.items() if p["birth_date"] < "1990-01-01" and not p["death_date"]
    ]
    covid = {v.code for v in covid_vaccines()}
    covid1 = sum(any(v in covid and n == 1 for v, n in doses[k]) for k in adults) / len(adults)
    assert 0.85 < covid1 < 0.99


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, 250, "01", seed=3, district="Cầu Giấy")
    generate(b, 250, "01", seed=3, district="Cầu Giấy")
    generate(c, 250, "01", seed=4, district="Cầu Giấy")
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_workers_give_the_same_bytes(tmp_path: Path) -> None:
    one = generate(tmp_path / "one", 1200, "01", seed=6, district="Đống Đa", workers=1)
    two = generate(tmp_path / "two", 1200, "01", seed=6, district="Đống Đa", workers=2)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")
    assert one.counts == two.counts and one.files == two.files
    assert not (tmp_path / "two" / ".parts").exists()


def test_bad_parameters_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="persons must be at least 1"):
        generate(tmp_path, 0)
    with pytest.raises(ValueError, match="quirk_rate"):
        generate(tmp_path, 5, quirk_rate=2)


def test_visits_respect_life_and_death(run: tuple[Path, Manifest]) -> None:
    out, _ = run
    persons = {r["person_key"]: r for r in rows(out / "truth/persons.csv")}
    owner = {r["record_id"]: r["person_key"] for r in rows(out / "truth/source_records.csv")}
    deaths_in_hospital = 0
    for path in (out / "his").rglob("*.xml"):
        xml1 = inner_files(path)["XML1"]
        p = persons[owner[f"his:{path.parts[-3]}:{path.stem}"]]
        assert xml1.findtext("NGAY_VAO")[:8] >= p["birth_date"].replace("-", "")
        if p["death_date"]:
            assert xml1.findtext("NGAY_RA")[:8] <= p["death_date"].replace("-", "")
        if xml1.findtext("KET_QUA_DTRI") == "5":
            deaths_in_hospital += 1
            assert xml1.findtext("NGAY_RA")[:8] == p["death_date"].replace("-", "")
            assert xml1.findtext("MA_LOAI_KCB") in ("03", "3")  # (4210 wrote "3")
    assert deaths_in_hospital > 0


def test_visits_before_july_2024_are_in_qd4210(tmp_path: Path) -> None:
    """Four years of visits: those that ended before QĐ 4750 took effect are QĐ 4210 hồ sơ
    (XML1–XML5, older field names, no CCCD, no papers, no check-in), which the parser reads
    back under the QĐ 130 names."""
    generate(tmp_path, 200, "01", seed=7, visit_years=4.0)
    legacy = [p for p in (tmp_path / "his").rglob("*.xml") if not modern(p)]
    assert len(legacy) > 20
    checkins = {p.stem for p in (tmp_path / "checkin").rglob("*.xml")}
    for path in legacy:
        env = etree.parse(str(path), STRICT).getroot()
        for fh in env.iterfind(".//FILEHOSO"):
            name, data = fh.findtext("LOAIHOSO"), base64.b64decode(fh.findtext("NOIDUNGFILE"))
            assert name in LEGACY_4210_FIELDS
            root = etree.fromstring(data, STRICT)
            table = legacy_table(name)
            rows = [root] if table.single else root.findall(table.row_tag)
            assert root.tag == table.record_path.split("/")[0 if table.single else 1]
            for rec in rows:
                assert {c.tag for c in rec} <= set(table.fields)
            if name == "XML1":
                assert rows[0].find("SO_CCCD") is None and rows[0].findtext("MA_BENH")
                assert len(rows[0].findtext("NGAY_SINH")) == 8
                (read,) = parse_table(data, "XML1")
                assert read["MA_BENH_CHINH"] == rows[0].findtext("MA_BENH")
                assert read["MA_THE_BHYT"] == rows[0].findtext("MA_THE")
        assert path.stem not in checkins


def test_register_and_dose_feeds_keep_their_bytes(tmp_path: Path) -> None:
    """Speed-ups of the generator keep every stream: the register, dose and station feeds
    (and their truth) of a fixed run hash as they did before (a deliberate change of the
    generator updates this digest)."""
    import hashlib

    generate(tmp_path, 300, province="01", seed=4, visit_rate=0.5)
    h = hashlib.sha256()
    for rel in ("population/dan_cu.csv", "insurance/bhyt.csv", "immunization/tiem_chung.csv",
                "station/tram_y_te.csv", "truth/source_records.csv"):  # fmt: skip
        h.update((tmp_path / rel).read_bytes())
    assert h.hexdigest() == "32c71875fece65b3286e91c7a2704f74d80fcabd66cbb2c9c11fd2ec84ea2676"
