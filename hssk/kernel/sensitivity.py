"""The one rule of what is sensitive (HIV, mental health, ...): every door, the book, sharing
and ingestion ask ``sensitivity_of``.

A resource is sensitive when it carries a v3 confidentiality/ActCode security label of a
sensitive category, or a diagnosis code of one (ICD-10 B20–B24 and Z21: HIV; chapter F: mental
health). Sensitive data needs the person's explicit consent naming the category (design §5).
"""

from __future__ import annotations

from typing import Any

from hssk.kernel.codes import concept_codes

# v3 ActCode sensitivity labels we honour, and what each means
CATEGORIES = {
    "HIV": "HIV/AIDS",
    "PSY": "sức khỏe tâm thần / mental health",
    "ETH": "nghiện chất / substance abuse",
    "SDV": "bạo lực giới, tình dục / sexual and domestic violence",
    "STD": "bệnh lây truyền qua đường tình dục / sexually transmitted disease",
}
# Confidentiality codes R (restricted) and V (very restricted) without a category
RESTRICTED = "R"
_CONFIDENTIALITY = frozenset({"R", "V"})
_ICD_PREFIXES = (("B20", "HIV"), ("B21", "HIV"), ("B22", "HIV"), ("B23", "HIV"), ("B24", "HIV"),
                 ("Z21", "HIV"), ("F", "PSY"))  # fmt: skip
_CODED = ("code", "reasonCode", "vaccineCode")


def sensitivity_of(body: dict[str, Any]) -> str | None:
    """The sensitive category of a FHIR resource (HIV, PSY, ETH, SDV, STD, or R for a restricted
    label without a category), or None."""
    restricted = False
    meta = body.get("meta")
    labels = meta.get("security") if isinstance(meta, dict) else None
    for label in labels if isinstance(labels, list) else ():
        if isinstance(label, dict):
            code = label.get("code")
            if code in CATEGORIES:
                return str(code)
            restricted = restricted or code in _CONFIDENTIALITY
    for key in _CODED:
        for code in concept_codes(body.get(key)):
            upper = code.upper()
            for prefix, category in _ICD_PREFIXES:
                if upper.startswith(prefix):
                    return category
    return RESTRICTED if restricted else None
