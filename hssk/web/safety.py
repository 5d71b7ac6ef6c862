"""What a clinician must see before anything else on a person's pages: allergies and active
problems (the banner), read from the same resources as the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hssk.kernel.codes import concept_codes
from hssk.records.extract import effective
from hssk.web.book import concept_text, is_sensitive

# Clinical statuses that take an allergy or a problem off the banner.
_INACTIVE = frozenset({"inactive", "resolved", "remission"})
_NOT_TRUE = frozenset({"refuted", "entered-in-error"})
MAX_PROBLEMS = 8


@dataclass(frozen=True)
class AllergyLine:
    substance: str
    reaction: str | None
    high_risk: bool  # criticality high: shown in the strongest colour


@dataclass(frozen=True)
class ProblemLine:
    text: str
    code: str | None
    since: datetime | None


@dataclass(frozen=True)
class Safety:
    allergies: list[AllergyLine]
    problems: list[ProblemLine]
    no_known_allergy: bool  # an allergy record says so explicitly ("không dị ứng")


def _status(body: dict[str, Any], key: str) -> str | None:
    codes = concept_codes(body.get(key))
    return codes[0] if codes else None


def _active(body: dict[str, Any]) -> bool:
    return (
        _status(body, "clinicalStatus") not in _INACTIVE
        and _status(body, "verificationStatus") not in _NOT_TRUE
    )


# SNOMED CT "no known allergy" codes (716186003 and its kinds)
_NO_ALLERGY = frozenset({"716186003", "409137002", "428607008", "429625007"})


def safety_of(resources: list[Any], include_sensitive: bool) -> Safety:
    """Allergies (active, not refuted) and active problems of a person, newest first; sensitive
    categories only with ``include_sensitive`` (the caller's rule allows them)."""
    allergies: dict[str, AllergyLine] = {}
    none_known = False
    problems: dict[str, ProblemLine] = {}
    for r in resources:
        body = r.body
        if not include_sensitive and is_sensitive(body):
            continue
        if r.type == "AllergyIntolerance" and _active(body):
            if set(concept_codes(body.get("code"))) & _NO_ALLERGY:
                none_known = True
                continue
            substance = concept_text(body.get("code")) or "—"
            reactions = [
                concept_text(x.get("manifestation"))
                for x in body.get("reaction") or ()
                if isinstance(x, dict)
            ]
            line = AllergyLine(
                substance,
                ", ".join(r for r in reactions if r) or None,
                body.get("criticality") == "high",
            )
            allergies.setdefault(substance.casefold(), line)
        elif r.type == "Condition" and _active(body) and body.get("clinicalStatus"):
            # only conditions that say they are active: a visit's diagnosis without a status
            # is history, not a current problem
            codes = concept_codes(body.get("code"))
            text = concept_text(body.get("code")) or (codes[0] if codes else "—")
            key = codes[0] if codes else text.casefold()
            since = effective(body)
            prev = problems.get(key)
            if prev is None or (since and (prev.since is None or since > prev.since)):
                problems[key] = ProblemLine(text, codes[0] if codes else None, since)
    floor = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(problems.values(), key=lambda p: p.since or floor, reverse=True)
    return Safety(
        sorted(allergies.values(), key=lambda a: (not a.high_risk, a.substance)),
        ordered[:MAX_PROBLEMS],
        none_known and not allergies,
    )
