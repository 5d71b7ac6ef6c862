"""Master patient index: normalization, identifier checks, matching, merge/unmerge.

Public API (ingest and the FHIR API code against these names)::

    link(conn, rec) -> LinkResult
    link_many(conn, recs, prepared=None) -> list[LinkResult]
    prepare(rec) -> Prepared                          # normalization, pure (any process)
    refresh_statistics(conn)                          # after a bulk load
    reclaim_persons(conn)                             # after a bulk load that updated persons
    get_person(conn, person_id) -> Person | None     # follows merged_into to the survivor
    golden_record(conn, person_id) -> Person | None  # the same without .replaces (one read)
    golden_record_ids(conn, person_id) -> (Person, [int]) | None  # with merged_ids, one read
    resolve(conn, person_id) -> int
    merged_ids(conn, person_id) -> [int]              # its survivor and every id merged into
                                                      # it: its data is stored under these
    find(conn, *, cccd=, bhyt=, bhxh=, name=, birth_date=, limit=20) -> list[Candidate]
    patient_resource(person) -> dict                  # FHIR R4 Patient
    match(conn, patient_json, count, only_certain) -> [(Person, score, grade)]   # PDQm $match
    mark_deceased_many(conn, [Death(person_id, died_at, source, source_ref)]) -> DeathOutcome
                                                      # every source of deaths comes here
    move_households(conn, [HouseholdMove(person_id, code, action)]) -> changed person ids
    households_known(conn, codes) -> the codes that name a household
    life_dates(conn, ids) -> {id: LifeDates}          # birth and death, to check entered dates
    amend_death(conn, DeathAmendment(...)) -> (old, new) | Refusal   # audited by the caller
    # a first load, decided for the whole file (dedup, identifier joins), written by COPY:
    linked(conn, recs) -> [person id | None]          # records already linked (re-runs)
    identifier_matches(conn, prepared) -> [IdentifierMatch | None]   # set-based CCCD/BHXH join
    load_batch(conn, prepared, clusters, persons=, rules=, reviews=) -> list[LinkResult]
"""

from hssk.registry.batch import IdentifierMatch, Review, identifier_matches, linked, load_batch
from hssk.registry.fhir import patient_resource
from hssk.registry.link import link, link_many, reclaim_persons, refresh_statistics
from hssk.registry.persons import (
    DEATH_SOURCES,
    Death,
    DeathAmendment,
    DeathOutcome,
    HouseholdMove,
    LifeDates,
    Refusal,
    amend_death,
    get_person,
    golden_record,
    golden_record_ids,
    households_known,
    life_dates,
    mark_deceased_many,
    merged_ids,
    merged_ids_many,
    move_households,
    resolve,
    resolve_many,
)
from hssk.registry.prepare import Prepared, prepare
from hssk.registry.search import find, match
from hssk.registry.types import Candidate, LinkResult, Person, SourceRecord

__all__ = [
    "DEATH_SOURCES",
    "Candidate",
    "Death",
    "DeathAmendment",
    "DeathOutcome",
    "HouseholdMove",
    "IdentifierMatch",
    "LifeDates",
    "LinkResult",
    "Person",
    "Prepared",
    "Refusal",
    "Review",
    "SourceRecord",
    "amend_death",
    "find",
    "get_person",
    "golden_record",
    "golden_record_ids",
    "households_known",
    "identifier_matches",
    "life_dates",
    "link",
    "link_many",
    "linked",
    "load_batch",
    "mark_deceased_many",
    "match",
    "merged_ids",
    "merged_ids_many",
    "move_households",
    "patient_resource",
    "prepare",
    "reclaim_persons",
    "refresh_statistics",
    "resolve",
    "resolve_many",
]
