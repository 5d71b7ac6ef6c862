"""Partner-facing endpoints: the card look-up (gateway shape) under daily quotas, and the
state of outbound sharing.

* ``POST /api/v1/lookup/card`` and its gateway alias ``POST /api/egw/KQNhanLichSuKCB2024``
  (JSON or form body) — needs scope ``system/Coverage.read`` (or ``user/Coverage.read``);
  every call is audited and counted against the account's daily quota (429 + Retry-After).
* ``GET /api/v1/share/status`` — events per partner and status (supervisors, admins).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hssk.access import audit, authorize
from hssk.access.actor import Actor
from hssk.access.policy import looks_up_identities
from hssk.api.bodies import JsonOrForm
from hssk.api.deps import Conn, CurrentActor, OptionalActor
from hssk.share import lookup, outbox, quota

router = APIRouter(tags=["share"])


def _may_lookup(actor: Actor) -> bool:
    """Systems within their scope; people in a clinical role (an identity look-up)."""
    return looks_up_identities(actor) and (
        actor.has_scope("system", "Coverage", "read") or actor.has_scope("user", "Coverage", "read")
    )


def _answer(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def card_lookup(conn: Conn, actor: OptionalActor, raw: JsonOrForm) -> JSONResponse:
    """Tra cứu thẻ BHYT / card look-up (insurance gateway request and result codes)."""
    detail = {
        "hoTenCb": str(raw.get("hoTenCb") or "")[:100],
        "cccdCb": str(raw.get("cccdCb") or "")[:20],
    }
    if not actor.authenticated or not _may_lookup(actor):
        if actor.authenticated:
            audit(conn, actor, "lookup", outcome="deny", resource_type="Coverage",
                  purpose="card-check", detail={**detail, "reason": "scope"})  # fmt: skip
        return _answer(lookup.LookupResult("401").body(), 401, {"WWW-Authenticate": "Bearer"})
    state = quota.consume(conn, actor.account_id)
    if not state.allowed:
        audit(conn, actor, "lookup", outcome="deny", resource_type="Coverage", purpose="card-check",
              detail={**detail, "reason": "quota", "limit": state.limit})  # fmt: skip
        body = {
            "maKetQua": "429",
            "ghiChu": state.message_vi(),
            "message_en": state.message_en(),
            "hanMuc": state.limit,
            "daDung": state.used,
            "datLaiLuc": state.reset_at.isoformat(),
        }
        return _answer(body, 429, {"Retry-After": str(state.retry_after())})
    parsed = lookup.parse(raw)
    if isinstance(parsed, lookup.LookupResult):
        result = parsed
    else:
        result = lookup.lookup(conn, parsed, quota.today_vn())
    audit(conn, actor, "lookup", outcome="allow", basis="scope", resource_type="Coverage",
          purpose="card-check", person_id=result.person_id,
          detail={**detail, "maKetQua": result.code, "maThe": str(raw.get("maThe") or "")[:20]})  # fmt: skip
    headers = {
        "X-Quota-Limit": str(state.limit),
        "X-Quota-Remaining": str(max(0, state.limit - state.used)),
    }
    return _answer(result.body(), 200, headers)


router.add_api_route("/api/v1/lookup/card", card_lookup, methods=["POST"], summary="Card look-up")
router.add_api_route(
    "/api/egw/KQNhanLichSuKCB2024",
    card_lookup,
    methods=["POST"],
    summary="Card look-up (insurance gateway path)",
)


@router.get("/api/v1/share/status")
def share_status(conn: Conn, actor: CurrentActor) -> dict[str, Any]:
    """Outbound events per partner and status (aggregates only)."""
    decision = authorize(conn, actor, "aggregate", "Outbox")
    audit(conn, actor, "aggregate", outcome="allow" if decision else "deny",
          basis=decision.basis, resource_type="Outbox")  # fmt: skip
    if not decision:
        return JSONResponse({"error": decision.reason}, status_code=403)  # type: ignore[return-value]
    counts = outbox.counts(conn)
    out: dict[str, dict[str, int]] = {}
    for (partner, status), n in counts.items():
        out.setdefault(partner, {})[status] = n
    return {"partners": out}
