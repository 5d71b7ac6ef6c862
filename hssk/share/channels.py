"""Per-visit channels behind the outbox: the insurance gateway (``gateway``) and the
Ministry's health-check hub (``ksk``).

At an event's first claim its payload is fixed — the signed hồ sơ or record, built from the
person's current record — so every retry sends the same bytes, and a re-send after a lost
answer meets the receiver's duplicate check on the same visit key. A visit that cannot be
written (no facility code, no birth date ...) gets a payload naming the reason and is
dead-lettered at once, visible in ``hssk share list --status dead``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import psycopg

from hssk.catalog import bundle
from hssk.kernel.config import load_settings
from hssk.share import gateway, ksk, outbox, xml130_out
from hssk.share.outbox import Event, Outcome
from hssk.share.partners import Partner
from hssk.share.xmlsign import Signer, SignerError, signer_for

log = logging.getLogger(__name__)
_Build = Callable[[xml130_out.Visit, Signer], dict[str, Any]]
_BUILD: dict[str, _Build] = {"xml130-gateway": gateway.payload, "ksk-hub": ksk.payload}
_POST = {"xml130-gateway": gateway.post, "ksk-hub": ksk.post}
_CLASSIFY = {"xml130-gateway": gateway.classify, "ksk-hub": ksk.classify}


def _error(vi: str, en: str) -> dict[str, Any]:
    return {"error": {"vi": vi, "en": en}}


def build_payloads(
    conn: psycopg.Connection[Any], events: list[Event], partners: dict[str, Partner]
) -> None:
    """Fix the payload of the channel events that have none yet (one UPDATE per batch)."""
    todo = [e for e in events if e.payload is None and e.subject is not None]
    by_partner: dict[str, list[Event]] = {}
    for e in todo:
        by_partner.setdefault(e.partner, []).append(e)
    ids: list[int] = []
    payloads: list[str] = []
    settings = load_settings()
    for pid, evs in by_partner.items():
        partner = partners.get(pid)
        if partner is None or partner.channel not in _BUILD:
            continue  # disabled since: the event waits
        try:
            signer: Signer | None = signer_for(settings, partner.signer)
            failed = None
        except SignerError as exc:
            signer, failed = None, _error(str(exc), str(exc))
        books = bundle.bundles(
            conn, sorted({e.person_id for e in evs}), allowed_sensitivity=partner.sensitive_labels
        )
        for e in evs:
            e.payload = failed or _payload(partner, e, books.get(e.person_id), signer)
            ids.append(e.id)
            payloads.append(orjson.dumps(e.payload).decode())
    outbox.fix_payloads(conn, ids, payloads)


def _payload(
    partner: Partner, e: Event, book: dict[str, Any] | None, signer: Signer | None
) -> dict[str, Any]:
    enc_id = str(e.subject).partition("/")[2]
    visit = xml130_out.visit_of(book, enc_id) if book else None
    if visit is None or signer is None:
        return _error(
            f"lượt khám {e.subject} không còn trong hồ sơ của người {e.person_id}",
            f"visit {e.subject} is no longer in the record of person {e.person_id}",
        )
    try:
        return _BUILD[partner.channel](visit, signer)
    except xml130_out.ExportError as exc:
        return _error(exc.vi, exc.en)
    except Exception as exc:  # one odd record must not stop the channel: dead-letter it
        log.exception("cannot build %s for %s", partner.id, e.subject)
        what = f"{type(exc).__name__}: {exc}"
        return _error(f"không lập được nội dung gửi: {what}", f"cannot build the content: {what}")


def send(client: httpx.Client, partner: Partner, event: Event) -> Outcome:
    """Send one channel event; a payload that could not be built is a dead letter."""
    body = event.payload or {}
    if "error" in body:
        err = body["error"]
        return Outcome(event.id, False, False, None, f"{err['vi']} / {err['en']}"[:500])
    try:
        resp = _POST[partner.channel](client, partner, body)
    except httpx.HTTPError as exc:
        return Outcome(event.id, False, True, None, f"{type(exc).__name__}: {exc}"[:500])
    delivered, retry, error = _CLASSIFY[partner.channel](resp)
    return Outcome(event.id, delivered, retry, resp.status_code, error)
