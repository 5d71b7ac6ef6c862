"""The HTTP doors of the components (access, ingest, supervision, partners): each module is one
router over its component's Python API, mounted by ``hssk.app``."""
