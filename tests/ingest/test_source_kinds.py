"""Each source kind is described once (ingest.kinds) and every door takes it from there."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hssk.ingest import kinds
from hssk.ingest.cli import app


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
