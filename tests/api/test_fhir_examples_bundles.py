"""The official R4 examples that are Bundles (``../shared/data/fhir-r4-examples``): the server
stores resources, not Bundles, so a Bundle example round-trips as its resources — each entry's
resource comes back equal — and the transaction and batch examples are processed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from hssk.records.store import content
from hssk.records.types import NOT_STORED, SUPPORTED_TYPES

H = dict[str, str]


def _examples(shared_dir: Path) -> dict[str, dict[str, Any]]:
    folder = shared_dir / "data/fhir-r4-examples"
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))
            if p.name != "package.json"}  # fmt: skip


def test_every_example_is_a_stored_type_or_a_bundle(shared_dir: Path) -> None:
    """So that the round-trip of test_fhir_api (stored types) and this file (Bundles) cover
    every example, none left out."""
    examples = _examples(shared_dir)
    assert len(examples) == 298
    kinds = {b["resourceType"] for b in examples.values()} - set(SUPPORTED_TYPES)
    assert kinds == {"Bundle"} and "Bundle" in NOT_STORED


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries' resources, those of Bundles within Bundles included."""
    out = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        if resource["resourceType"] == "Bundle":
            out += _resources(resource)
        elif resource["resourceType"] in SUPPORTED_TYPES:
            out.append(resource)
    return out


def test_bundle_examples_round_trip_as_their_resources(
    client: TestClient, platform_headers: H, shared_dir: Path
) -> None:
    bundles = {n: b for n, b in _examples(shared_dir).items() if b["resourceType"] == "Bundle"}
    assert len(bundles) == 28
    checked = 0
    for name, bundle in bundles.items():
        for body in sorted(_resources(bundle), key=lambda b: b["resourceType"] != "Patient"):
            # entries of different examples share ids (Observation/14 of two persons): each
            # is created anew, and must come back equal but for its id
            rtype = body["resourceType"]
            r = client.post(f"/fhir/{rtype}", json=body, headers=platform_headers)
            assert r.status_code == 201, (name, rtype, r.text)
            got = client.get(f"/fhir/{rtype}/{r.json()['id']}", headers=platform_headers).json()
            assert {k: v for k, v in content(got).items() if k != "id"} == {
                k: v for k, v in content(body).items() if k != "id"
            }, (name, rtype)
            checked += 1
    assert checked == 250  # every resource of the 28 Bundles


def test_transaction_and_batch_examples_are_processed(
    client: TestClient, platform_headers: H, shared_dir: Path
) -> None:
    """Bundle-bundle-transaction.json is test_fhir_api's (it asks for an operation)."""
    examples = _examples(shared_dir)
    for name in ("Bundle-hla-1.json", "Bundle-ussg-fht.json", "Bundle-xds.json",
                 "Bundle-bundle-request-medsallergies.json",
                 "Bundle-bundle-request-simplesummary.json"):  # fmt: skip
        bundle = examples[name]
        r = client.post("/fhir", json=bundle, headers=platform_headers)
        assert r.status_code == 200, (name, r.text)
        answer = r.json()
        assert answer["type"] == f"{bundle['type']}-response"
        assert len(answer["entry"]) == len(bundle["entry"])
        for entry, result in zip(bundle["entry"], answer["entry"], strict=True):
            status = result["response"]["status"]
            if entry["request"]["method"] in ("POST", "PUT"):
                assert status[:3] in ("200", "201"), (name, entry["request"], status)
                location = result["response"]["location"].split("/_history")[0]
                assert client.get(f"/fhir/{location}", headers=platform_headers).status_code == 200
