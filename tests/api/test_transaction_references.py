"""The references of a resource, as the transaction collects them once per entry while it
rewrites them, for the conditional references and the check for urn:uuid references naming
no entry."""

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
    found: list[str] = []
    mapping = {"urn:uuid:p": "Patient/9", "Condition/c1": "Condition/c2"}
    rewritten = _rewrite(body, mapping, found)
    assert (
        references(rewritten)
        == found
        == [
            "Patient/9",
            "Practitioner?identifier=s|1",
            "#loc",
            "Organization/o1",
            "Condition/c2",
        ]
    )
    assert rewritten["text"] == body["text"] and rewritten["contained"] == body["contained"]
    assert body["subject"] == {"reference": "urn:uuid:p"}  # the bundle's own body untouched
