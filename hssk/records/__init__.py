"""Clinical record store: FHIR R4 resources, versioned, searchable by person, code and date."""

from hssk.records.rows import Rendered, prerender
from hssk.records.store import (
    BulkResult,
    Gone,
    NewResource,
    NotFound,
    RefusedMove,
    Stored,
    VersionConflict,
    bulk_upsert,
    delete,
    everything,
    history,
    id_for_source_key,
    person_of,
    read,
    refresh_statistics,
    save,
    vread,
)
from hssk.records.validate import InvalidResource, Issue, validate

__all__ = [
    "BulkResult",
    "Gone",
    "InvalidResource",
    "Issue",
    "NewResource",
    "NotFound",
    "RefusedMove",
    "Rendered",
    "Stored",
    "VersionConflict",
    "bulk_upsert",
    "delete",
    "everything",
    "history",
    "id_for_source_key",
    "person_of",
    "prerender",
    "read",
    "refresh_statistics",
    "save",
    "validate",
    "vread",
]
