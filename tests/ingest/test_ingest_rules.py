"""Every rule ingestion can hold a record back by is explained (labels and a fix, vi + en)."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi.testclient import TestClient

from hssk.app import create_app
from hssk.db import Database
from hssk.ingest import rules
from hssk.kernel.config import load_settings

PACKAGE = Path(rules.__file__).resolve().parent
RAISERS = {"Problem", "XmlError", "SourceError"}
IDENTIFIER_KINDS = ("cccd", "bhyt", "bhxh", "cskcb")  # check_identifier's f"{kind}.format"


def _rules_in_code() -> set[str]:
    """Rule names in the ingest package: first arguments of Problem / XmlError / SourceError,
    and values assigned to a variable named ``rule``."""
    found: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in RAISERS:
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
            elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple):
                names = [getattr(t, "id", None) for t in node.targets[0].elts]
                if "rule" in names and isinstance(node.value, ast.Tuple):
                    value = node.value.elts[names.index("rule")]
                    if isinstance(value, ast.Constant):
                        found.add(value.value)
    return found


def test_every_rule_in_the_code_is_explained() -> None:
    used = _rules_in_code() | {f"{k}.format" for k in IDENTIFIER_KINDS}
    assert len(used) > 30  # the scan sees the package's rules
    assert {"xml.truncated", "icd10.unknown", "duplicate-key"} <= used
    assert used - set(rules.RULES) == set()
    for r in rules.RULES.values():
        assert r.vi and r.en and r.fix_vi and r.fix_en and r.vi != r.en
    assert rules.describe("no.such.rule").vi == "Lỗi khác"


def test_rules_are_served_to_his_vendors(clean_db: Database) -> None:
    with TestClient(create_app(load_settings(), clean_db)) as client:
        r = client.get("/api/v1/ingest/rules")
    assert r.status_code == 200
    by_code = {x["code"]: x for x in r.json()}
    assert set(by_code) == set(rules.RULES)
    assert by_code["date.future"]["vi"] == "Ngày ở tương lai"
