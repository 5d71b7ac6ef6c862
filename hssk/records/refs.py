"""How a resource names its person: ``Patient/mpi-N``, the golden record of person N in the
master patient index (what ``GET /fhir/Patient/mpi-N`` serves). Older records and some
writers say ``Patient/N``; searches accept both (``golden_id``)."""

from __future__ import annotations

GOLDEN = "mpi-"


def patient_reference(person_id: int) -> str:
    """The reference to person ``person_id``'s Patient."""
    return f"Patient/{GOLDEN}{int(person_id)}"


def golden_id(rid: str) -> int | None:
    """N for 'mpi-N', else None."""
    tail = rid[len(GOLDEN) :] if rid.startswith(GOLDEN) else ""
    return int(tail) if tail.isdigit() and len(tail) < 19 else None


def bare_person_id(rid: str) -> int | None:
    """N for a bare person id 'N' (the form ingestion wrote before ``mpi-N``), else None."""
    return int(rid) if rid.isdigit() and len(rid) < 19 else None
