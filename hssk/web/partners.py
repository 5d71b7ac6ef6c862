"""Which sections of the health book each partner app receives (its field set).

Keys are the ``client`` of the partner's system account (its OAuth client id). A partner not
listed receives ``DEFAULT``. Change the field set here (or with ``HSSK_BOOK_PARTNERS``, a JSON
object of client → list of sections) without touching code elsewhere.
"""

from __future__ import annotations

import json
import os

from hssk.web.models import SECTIONS

_CLINICAL = tuple(s for s in SECTIONS if s != "self_reported")

PARTNER_SECTIONS: dict[str, tuple[str, ...]] = {
    # VNeID shows the whole citizen book except what citizens typed themselves.
    "vneid": _CLINICAL,
    # The city app shows papers and appointments but no clinical detail.
    "city-app": (
        "admin",
        "insurance",
        "immunizations",
        "schedule",
        "documents",
        "referrals",
        "appointments",
    ),
}
DEFAULT: tuple[str, ...] = ("admin", "insurance")

# Field catalogs (hssk.catalog) each partner may ask for field by field (``/fields``).
PARTNER_CATALOGS: dict[str, tuple[str, ...]] = {
    "vneid": ("qd1332",),
    "city-app": ("qd1332",),
}


def sections_for(client: str | None) -> tuple[str, ...]:
    """The sections partner ``client`` may receive (only known section names)."""
    table = dict(PARTNER_SECTIONS)
    override = os.environ.get("HSSK_BOOK_PARTNERS")
    if override:
        table.update({k: tuple(v) for k, v in json.loads(override).items()})
    chosen = table.get(client or "", DEFAULT)
    return tuple(s for s in chosen if s in SECTIONS)


def catalogs_for(client: str | None) -> tuple[str, ...]:
    """Field catalogs partner ``client`` may receive."""
    return PARTNER_CATALOGS.get(client or "", ())
