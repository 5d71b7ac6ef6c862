"""Pages where a facility's staff fix the records HSSK held back (``/staff/quarantine``).

The list shows what the facility's files and HIS calls had refused, the commonest reasons
first; a record's page shows why, in which element, and its content, which can be corrected
and replayed, or discarded with a reason. Who may see what is ``ingest.permissions``' rule;
every page view and action is audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi import Path as UrlPath
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hssk.access import Actor, audit
from hssk.api.bodies import FormFields
from hssk.api.deps import Conn
from hssk.http.gate import PageActor
from hssk.ingest import permissions, quarantine, rules
from hssk.web import render
from hssk.web.i18n import t

router = APIRouter(include_in_schema=False)
ErrorId = Annotated[int, UrlPath(ge=1, le=2**63 - 1)]
PER_PAGE = 50
MAX_RAW = 20 * 1024 * 1024  # a corrected record: the gateway's limit for one hồ sơ


def _login(request: Request, actor: Actor) -> Response | None:
    if not actor.authenticated or actor.kind not in ("clinician", "staff"):
        return RedirectResponse(f"/staff/login?{urlencode({'next': request.url.path})}", 303)
    return None


def _refused(request: Request, vi: str, en: str, status: int) -> HTMLResponse:
    lang = render.lang_of(request)
    return render.page(request, "error.html", status=status, nav="quarantine",
                       message=en if lang == "en" else vi, reason=None)  # fmt: skip


@router.get("/staff/quarantine", response_class=HTMLResponse)
def quarantine_list(
    request: Request,
    conn: Conn,
    actor: PageActor,
    status: Annotated[str, Query(pattern="^(quarantined|replayed|discarded)$")] = "quarantined",
    rule: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    if (redirect := _login(request, actor)) is not None:
        return redirect
    scope = permissions.error_scope(conn, actor)
    if scope is None:
        audit(conn, actor, "ingest-errors", outcome="deny", resource_type="IngestError")
        return _refused(
            request,
            "Trang này dành cho nhân viên của cơ sở khám chữa bệnh: tài khoản của bạn không "
            "thuộc cơ sở nào, nên không xem được bản ghi bị giữ lại.",
            "This page is for a health facility's staff: your account belongs to no facility, "
            "so it cannot see held-back records.",
            403,
        )
    facility = permissions.facility_filter(scope)
    counts = quarantine.count_by_rule(conn, status=status, facility=facility)
    rule = rule or None
    recs = quarantine.list_errors(conn, status=status, facility=facility, rule=rule,
                                  limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE)  # fmt: skip
    more = len(recs) > PER_PAGE
    recs = recs[:PER_PAGE]
    audit(conn, actor, "ingest-errors", outcome="allow", resource_type="IngestError",
          detail={"facility": scope, "ids": [r.id for r in recs]})  # fmt: skip

    def link(**change: Any) -> str:
        query = {"status": status, "rule": rule or "", "page": page, **change}
        return "/staff/quarantine?" + urlencode({k: v for k, v in query.items() if v})

    return render.page(
        request, "quarantine_list.html", nav="quarantine", recs=recs, counts=counts,
        total=sum(counts.values()), shown=status, rule=rule, page=page, link=link,
        facility=None if facility is None else scope, more=more, statuses=quarantine.STATUSES,
        file_name=lambda f: Path(f or "").name, rule_of=rules.describe,
    )  # fmt: skip


def _record_page(
    request: Request, rec: quarantine.QuarantinedRecord, status: int = 200, **ctx: Any
) -> HTMLResponse:
    ctx.setdefault("raw", rec.raw or "")
    return render.page(request, "quarantine_record.html", status=status, nav="quarantine",
                       rec=rec, file_name=Path(rec.file or "").name,
                       rule_of=rules.describe, **ctx)  # fmt: skip


def _open(
    request: Request, conn: Conn, actor: Actor, error_id: int, action: str
) -> quarantine.QuarantinedRecord | Response:
    if (redirect := _login(request, actor)) is not None:
        return redirect
    try:
        return permissions.checked_record(conn, actor, error_id, action)
    except quarantine.ReplayError as exc:
        return _refused(request, exc.vi, exc.reason, 404)
    except permissions.NotAllowed as exc:
        return _refused(request, exc.vi, exc.en, 403)


@router.get("/staff/quarantine/{error_id}", response_class=HTMLResponse)
def quarantine_record(
    error_id: ErrorId, request: Request, conn: Conn, actor: PageActor
) -> Response:
    rec = _open(request, conn, actor, error_id, "ingest-error-read")
    return rec if isinstance(rec, Response) else _record_page(request, rec)


@router.post("/staff/quarantine/{error_id}", response_class=HTMLResponse)
def quarantine_action(
    error_id: ErrorId, request: Request, conn: Conn, actor: PageActor, form: FormFields
) -> Response:
    action = form.get("action", "")
    if action not in ("save", "replay", "discard"):
        return _refused(request, "Thao tác không hợp lệ.", "unknown action", 400)
    rec = _open(
        request, conn, actor, error_id, f"ingest-{'correct' if action == 'save' else action}"
    )
    if isinstance(rec, Response):
        return rec
    lang = render.lang_of(request)
    raw = form.get("raw", "").replace("\r\n", "\n")
    try:
        if action == "discard":
            quarantine.discard(conn, error_id, form.get("reason", ""), actor.account_id)
            return _record_page(request, quarantine.get_error(conn, error_id), done="discarded")
        if len(raw.encode()) > MAX_RAW:
            raise quarantine.ReplayError(
                f"the content is over {MAX_RAW // 2**20} MB", f"nội dung vượt {MAX_RAW // 2**20} MB"
            )
        if raw != (rec.raw or ""):
            quarantine.correct(conn, error_id, raw, actor.account_id)
        if action == "save":
            return _record_page(request, quarantine.get_error(conn, error_id), done="saved")
        with conn.transaction():
            summary = quarantine.replay(conn, error_id)
    except quarantine.ReplayError as exc:
        field = "reason" if action == "discard" else "raw"
        status = 409 if isinstance(exc, quarantine.AlreadyHandled) else 422
        # the correction stays saved even when the replay still fails: no work is lost
        return _record_page(request, quarantine.get_error(conn, error_id), status=status,
                            raw=raw, errors={field: exc.reason if lang == "en" else exc.vi},
                            values={"reason": form.get("reason", "")})  # fmt: skip
    stored = ", ".join(f"{k} {v}" for k, v in sorted(summary.stored.items()))
    return _record_page(request, quarantine.get_error(conn, error_id), done="replayed",
                        stored=stored or t("nothing_new", lang))  # fmt: skip
