"""Each source kind is described once (ingest.kinds) and every door takes it from there."""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import pkgutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hssk.ingest import kinds, stream
from hssk.ingest.cli import app
from hssk.ingest.kinds.base import Broken


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(kinds.UnknownKind, match="one of xml130, immunization"):
        kinds.kind("xml4210")


def test_every_kind_has_a_command_and_a_description() -> None:
    helptext = CliRunner().invoke(app, ["--help"]).output
    for k in kinds.KINDS_LIST:
        assert k.name in helptext
        assert k.vi and k.en and k.extensions
        assert all(ext.startswith(".") for ext in k.extensions)


def test_registers_are_not_facility_files() -> None:
    # a national register is loaded by the platform's systems, never checked per facility
    for k in kinds.KINDS_LIST:
        assert not (k.register and k.checks_facility)
        assert not (k.register and k.signed)


# modules of hssk.ingest.kinds that hold what several kinds share, not a kind
_SHARED = {"base", "csvrows"}


def test_every_kind_is_one_module_with_one_registered_object() -> None:
    modules = {m.name for m in pkgutil.iter_modules(kinds.__path__)} - _SHARED
    registered = [k.name for k in kinds.KINDS_LIST]
    assert sorted(registered) == sorted(modules)  # one module a kind, none left unregistered
    assert len(set(registered)) == len(registered)
    for name in modules:
        module = importlib.import_module(f"hssk.ingest.kinds.{name}")
        own = [v for v in vars(module).values() if isinstance(v, kinds.SourceKind)]
        assert own == [kinds.kind(name)], f"kinds.{name} defines {len(own)} SourceKind objects"


def test_payloads_are_typed_records_that_reach_a_worker(tmp_path: Path) -> None:
    """What a reader hands to the mapping processes is a small dataclass, pickled whole."""
    csv = tmp_path / "a.csv"
    csv.write_text("ma_ban_ghi,ho_ten\nR1,Lê Văn An\n", "utf-8")
    ndjson = tmp_path / "a.ndjson"
    ndjson.write_text('{"resourceType": "Patient", "id": "p1"}\n', "utf-8")
    paper = tmp_path / "gbt.xml"
    paper.write_text("<HSDLGBT/>", "utf-8")
    for name, path in (("population", csv), ("fhir", ndjson), ("edoc", paper), ("xml130", paper)):
        (piece,) = stream.read(name, [str(path)])
        payload = piece.payload
        assert dataclasses.is_dataclass(payload) and not isinstance(payload, Broken)
        assert pickle.loads(pickle.dumps(payload)) == payload
        assert payload.path == str(path)
    (missing,) = stream.read("population", [str(tmp_path / "gone.csv")])
    (unit,) = stream.map_payloads("population", [missing.payload], None)
    assert [p.rule for p in unit.problems] == ["file.missing"]


def test_every_kind_maps_a_quarantined_record_again() -> None:
    for k in kinds.KINDS_LIST:
        assert callable(k.read) and callable(k.map) and callable(k.remap), k.name
    with pytest.raises(kinds.SourceError, match="JSON"):
        kinds.kind("station").remap("not json", "tram.csv", None)
