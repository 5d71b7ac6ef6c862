"""The references of a resource, as the transaction reads them once per entry for the rewrite,
the conditional references and the check for urn:uuid references naming no entry."""

from __future__ import annotations

from hssk.api.transaction import _rewrite, references


def test_references_in_document_order_through_lists_and_nested_elements() -> None:
    body = {
        "resourceType": "Encounter",
        "subject": {"reference": "urn:uuid:p"},
        "participant": [
            {"individual": {"reference": "Practitioner?identifier=s|1", "display": "BS An"}},
            {"individual": {"display": "no reference"}},
        ],
        "contained": [{"resourceType": "Location", "partOf": {"reference": "#loc"}}],
        "extension": [{"url": "x", "valueReference": {"reference": "Organization/o1"}}],
        # an element called 'reference' that is no string (CodeableReference): searched within
        "reason": [{"reference": {"reference": "Condition/c1"}}],
        "text": {"status": "generated", "div": "<div>reference</div>"},
    }
    assert references(body) == [
        "urn:uuid:p",
        "Practitioner?identifier=s|1",
        "#loc",
        "Organization/o1",
        "Condition/c1",
    ]
    assert references(None) == [] and references("Patient/1") == []
    rewritten = _rewrite(body, {"urn:uuid:p": "Patient/9", "Condition/c1": "Condition/c2"})
    assert references(rewritten) == [
        "Patient/9",
        "Practitioner?identifier=s|1",
        "#loc",
        "Organization/o1",
        "Condition/c2",
    ]
    assert body["subject"] == {"reference": "urn:uuid:p"}  # the bundle's own body untouched
