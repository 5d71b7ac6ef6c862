"""HTTP ingestion: uploads with job tracking (/api/v1/ingest) and the insurance gateway's
request/response shapes (/api/token/take, /api/qd130/…, /api/hososuckhoe/…), so a HIS can send
to HSSK by changing only the address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path as FsPath
from typing import Annotated, Any

import psycopg
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Body,
    File,
    Form,
    Header,
    Path,
    Query,
    Request,
    UploadFile,
)
from fastapi.responses import JSONResponse

from hssk.access import Actor, audit, auth
from hssk.access.signing import unit_certificates
from hssk.api.deps import Conn, CurrentActor, get_database, get_settings
from hssk.db import Database
from hssk.http import gate
from hssk.http.client import client_address
from hssk.http.limits import MB, BodyLimit
from hssk.ingest import jobstore, kinds, permissions, quarantine, rules, runner, xmlsig
from hssk.kernel import clock

log = logging.getLogger(__name__)


def _resume_quietly(db: Database) -> None:
    try:
        for s in runner.resume(db):
            log.info("ingest job %s resumed at start-up: %s", s.job_id, s.status)
    except Exception:  # the server keeps running; `hssk ingest --resume` can finish them
        log.exception("resuming ingest jobs at start-up failed")


@asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    """At start-up, finish the jobs a stopped server left unfinished (in the background)."""
    db = getattr(app.state, "db", None)
    if db is not None and os.environ.get("HSSK_INGEST_RESUME", "1") != "0":
        threading.Thread(
            target=_resume_quietly, args=(db,), daemon=True, name="ingest-resume"
        ).start()
    yield


router = APIRouter(lifespan=_lifespan)
MAX_UPLOAD = 2 * 1024**3  # one uploaded file
MAX_GATEWAY_FILE = 20 * 1024**2  # one hồ sơ sent to the gateway endpoints (decoded)
# A gateway request: the file in base64 (4/3 of it, line breaks allowed) and a few fields.
MAX_GATEWAY_BODY = MAX_GATEWAY_FILE * 4 // 3 + 2 * MB
MAX_ID = 2**63 - 1
# Registers and the facility list change everyone's data: platform systems only.
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def _problem(status: int, vi: str, en: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": en, "thongDiep": vi, "message": en})


def _upload_dir(request: Request) -> FsPath:
    d = get_settings(request).data_dir / "uploads" / uuid.uuid4().hex
    d.mkdir(parents=True, exist_ok=True)
    return d


def _without_paths(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with their file's name only: where the server keeps uploads is not the
    caller's business (and tells an attacker about the machine)."""
    return [{**e, "file": FsPath(e["file"]).name} if e.get("file") else e for e in items]


def _run_in_background(db: Database, job_id: int) -> None:
    try:
        runner.run_job(db, job_id, start_method="forkserver")  # no fork of a threaded server
    except Exception:  # the job stays 'running' and is resumed by `hssk ingest --resume`
        log.exception("ingest job %s failed", job_id)


# --- /api/v1/ingest --------------------------------------------------------------------------
@router.post("/api/v1/ingest/{kind}", tags=["ingest"], summary="Upload source files (a job)")
def upload(
    kind: str,
    request: Request,
    background: BackgroundTasks,
    conn: Conn,
    actor: CurrentActor,
    files: Annotated[list[UploadFile], File(description="One or more files of this kind")],
) -> Any:
    """Store the files, create an ingest job and run it in the background; answer its id.

    Kinds: xml130, immunization, population, insurance, station, fhir, facilities, edoc."""
    if kind not in kinds.BY_NAME:
        return _problem(404, f"Không có loại dữ liệu '{kind}'.", f"unknown kind '{kind}'")
    if not permissions.can_write(actor):
        audit(conn, actor, "ingest", outcome="deny", detail={"kind": kind})
        return _problem(403, "Tài khoản không có quyền ghi dữ liệu.", "a write scope is required")
    refusal = _sender_refusal(conn, actor, kind)
    if refusal is not None:
        audit(conn, actor, "ingest", outcome="deny", detail={"kind": kind, "reason": refusal[1]})
        return _problem(403, *refusal)
    paths = _save(files, _upload_dir(request))
    if paths is None:
        return _problem(413, "Tệp quá lớn.", "file too large")
    signatures: dict[str, Any] = {}
    if kinds.kind(kind).signed:
        refused = _check_signatures(request, conn, actor, kind, paths, signatures)
        if refused is not None:
            for stored in paths:  # nothing of a refused upload is kept (the sender has it)
                FsPath(stored).unlink(missing_ok=True)
            return refused
    job_id = jobstore.create_job(
        conn, kind, paths, unit_id=actor.unit_id, created_by=actor.account_id
    )
    audit(conn, actor, "ingest", outcome="allow",
          detail={"kind": kind, "job": job_id, "signatures": signatures or None})  # fmt: skip
    conn.commit()
    background.add_task(_run_in_background, get_database(request), job_id)
    return JSONResponse(
        status_code=202,
        content={"job_id": job_id, "status": "pending", "href": f"/api/v1/ingest/jobs/{job_id}"},
    )


def _sender_refusal(
    conn: psycopg.Connection[Any], actor: Actor, kind: str
) -> tuple[str, str] | None:
    """Why the actor may not send files of ``kind`` (vi, en), if so: registers come from
    national and platform systems only, a facility's own records from its own system."""
    if kinds.kind(kind).register:
        return permissions.register_refusal(conn, actor, kind)
    if kinds.kind(kind).facility_own:
        return permissions.facility_refusal(conn, actor, None)
    return None


def _save(files: list[UploadFile], target: FsPath) -> list[str] | None:
    """The uploaded files stored under ``target``, in order; None if one is too large."""
    paths = []
    for i, f in enumerate(files):
        name = FsPath(f.filename or f"file{i}").name or f"file{i}"
        path = target / f"{i:04d}_{name}"
        with path.open("wb") as out:
            shutil.copyfileobj(f.file, out, length=1 << 20)  # constant memory
        if path.stat().st_size > MAX_UPLOAD:
            return None
        paths.append(str(path))
    return paths


def _check_signatures(request: Request, conn: psycopg.Connection[Any], actor: Actor, kind: str,
                      paths: list[str], signatures: dict[str, Any]) -> JSONResponse | None:  # fmt: skip
    """Check the facility signature of each stored file (kept in ``signatures`` by name); the
    answer to send for the first one refused (audited)."""
    certs = _certificates(conn, actor)
    for path_text in paths:
        file = FsPath(path_text)
        if file.stat().st_size > xmlsig.MAX_CHECKED_BYTES:
            continue  # checked only where the whole file fits in memory
        signature, refused = _signature(request, certs, file.read_bytes())
        name = file.name.split("_", 1)[-1]
        signatures[name] = signature.to_json()
        if refused is not None:
            audit(conn, actor, "ingest", outcome="deny",
                  detail={"kind": kind, "file": name, "signature": signature.to_json()})  # fmt: skip
            return _problem(refused, f"Tệp {name}: chữ ký số không được chấp nhận: "
                            f"{signature.reason_vi}", f"file {name}: {signature.reason}")  # fmt: skip
    return None


def _may_follow(actor: Actor, info: jobstore.JobInfo | None) -> bool:
    if info is None:
        return False
    every = permissions.follows_every_job(actor)
    return every or jobstore.may_follow(info, unit_id=actor.unit_id, account_id=actor.account_id)


@router.get("/api/v1/ingest/jobs/{job_id}", tags=["ingest"], summary="Progress and errors of a job")
def job_status(job_id: Id, conn: Conn, actor: CurrentActor) -> Any:
    info = jobstore.job_info(conn, job_id)
    visible = _may_follow(actor, info)
    # the summary lists the job's quarantined records (keys, values): an access to be audited
    audit(conn, actor, "ingest-job-read", outcome="allow" if visible else "deny",
          resource_type="IngestJob", resource_id=str(job_id))  # fmt: skip
    if not visible or info is None:
        return _problem(404, f"Không có công việc {job_id}.", f"no job {job_id}")
    s = jobstore.job_summary(conn, job_id)
    out = s.to_json()
    out["errors"] = _without_paths(out["errors"])
    in_file = (s.checkpoint.get("pos") or [0, 0])[1]
    out["progress"] = {"files": info.files, "files_done": info.files_done,
                       "records_in_file": in_file}  # fmt: skip
    follow = info.to_json()
    out.update({k: follow[k] for k in ("interrupted", "created_at", "started_at", "finished_at")})
    return out


@router.get("/api/v1/ingest/jobs", tags=["ingest"], summary="Ingest jobs, newest first")
def list_jobs(
    conn: Conn,
    actor: CurrentActor,
    status: Annotated[str | None, Query(pattern="^(pending|running|done|interrupted)$")] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Any:
    """Status, progress and counts of each job the caller may follow: a platform system's
    (system/*.write) every job, anyone else those of their unit or created by them.
    ``interrupted``: running jobs no process holds (they resume at the next server start or
    with ``hssk ingest --resume``). Counts only, no records: the errors are per job."""
    every = permissions.follows_every_job(actor)  # else the rule of jobstore.may_follow
    found = jobstore.list_jobs(
        conn, status=status, kind=kind, limit=limit, offset=offset,
        unit_id=None if every else actor.unit_id, created_by=None if every else actor.account_id,
    )  # fmt: skip
    return [j.to_json() for j in found]


@router.get("/api/v1/ingest/rules", tags=["ingest"], summary="Quarantine rules explained")
def list_rules() -> list[dict[str, Any]]:
    """Every rule a record can be held back by: what it means and how the sender fixes it,
    in Vietnamese and English (public: it describes the checks, no data)."""
    return [r.to_json() for r in rules.RULES.values()]


@router.get("/api/v1/ingest/errors", tags=["ingest"], summary="Quarantined records")
def list_errors(
    conn: Conn,
    actor: CurrentActor,
    job: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[
        str, Query(pattern="^(quarantined|replayed|discarded|noted|all)$")
    ] = "quarantined",
    rule: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Any:
    scope = permissions.error_scope(conn, actor)
    if scope is None:
        audit(conn, actor, "ingest-errors", outcome="deny", resource_type="IngestError")
        return _problem(
            403,
            "Chỉ nhân viên của cơ sở KCB (hoặc hệ thống nền tảng) mới xem được bản ghi bị cách ly.",
            "only a facility's staff (or a platform system) may see quarantined records",
        )
    recs = quarantine.list_errors(
        conn, job_id=job, status=None if status == "all" else status,
        facility=permissions.facility_filter(scope), rule=rule, limit=limit, offset=offset,
    )  # fmt: skip
    audit(conn, actor, "ingest-errors", outcome="allow", resource_type="IngestError",
          detail={"facility": scope, "ids": [r.id for r in recs][:1000]})  # fmt: skip
    return _without_paths([r.to_json() for r in recs])


def _handled(
    conn: psycopg.Connection[Any], actor: Actor, error_id: int, action: str
) -> quarantine.QuarantinedRecord | JSONResponse:
    """The record if the actor may handle it (audited either way), else the answer to send."""
    try:
        return permissions.checked_record(conn, actor, error_id, action)
    except quarantine.ReplayError as exc:
        return _problem(404, exc.vi, exc.reason)
    except permissions.NotAllowed as exc:
        return _problem(403, exc.vi, exc.en)


@router.get("/api/v1/ingest/errors/{error_id}", tags=["ingest"], summary="One quarantined record")
def get_error(error_id: Id, conn: Conn, actor: CurrentActor) -> Any:
    rec = _handled(conn, actor, error_id, "ingest-error-read")
    return rec if isinstance(rec, JSONResponse) else _without_paths([rec.to_json(with_raw=True)])[0]


def _handle(
    conn: psycopg.Connection[Any], actor: Actor, error_id: int, action: str,
    act: Callable[[], dict[str, Any]],
) -> Any:  # fmt: skip
    """``act`` on a quarantined record the actor may handle; a record handled already → 409,
    one that still cannot be taken → 422 (with the reasons)."""
    rec = _handled(conn, actor, error_id, action)
    if isinstance(rec, JSONResponse):
        return rec
    try:
        return act()
    except quarantine.AlreadyHandled as exc:
        return _problem(409, exc.vi, exc.reason)
    except quarantine.ReplayError as exc:
        return _problem(422, exc.vi, exc.reason)


@router.put("/api/v1/ingest/errors/{error_id}", tags=["ingest"], summary="Correct a record")
def correct_error(
    error_id: Id,
    conn: Conn,
    actor: CurrentActor,
    raw: Annotated[str, Body(media_type="text/plain")],
) -> Any:
    def correct() -> dict[str, Any]:
        quarantine.correct(conn, error_id, raw, actor.account_id)
        return {"id": error_id, "status": "quarantined", "corrected": True}

    return _handle(conn, actor, error_id, "ingest-correct", correct)


@router.post("/api/v1/ingest/errors/{error_id}/replay", tags=["ingest"], summary="Replay")
def replay_error(error_id: Id, conn: Conn, actor: CurrentActor) -> Any:
    def replay() -> dict[str, Any]:
        with conn.transaction():
            out = quarantine.replay(conn, error_id).to_json()
        out["errors"] = _without_paths(out["errors"])
        out["id"], out["status"] = error_id, "replayed"
        return out

    return _handle(conn, actor, error_id, "ingest-replay", replay)


@router.post("/api/v1/ingest/errors/{error_id}/discard", tags=["ingest"], summary="Discard")
def discard_error(
    error_id: Id,
    conn: Conn,
    actor: CurrentActor,
    reason: Annotated[str, Body(embed=True, min_length=1, max_length=500)],
) -> Any:
    """Set a quarantined record aside for good, saying why; it is kept, never stored."""

    def discard() -> dict[str, Any]:
        quarantine.discard(conn, error_id, reason, actor.account_id)
        return {"id": error_id, "status": "discarded"}

    return _handle(conn, actor, error_id, "ingest-discard", discard)


# --- gateway-compatible endpoints (spec §3.2) --------------------------------------------------
def _now_vn() -> str:
    return clock.now_vn().strftime("%Y%m%d%H%M%S")


def _gateway(code: int, message: str, tx: str = "", status: int = 200) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={
            "maKetQua": str(code),
            "maGiaoDich": tx,
            "thoiGianTiepNhan": _now_vn(),
            "thongDiep": message,
        },
    )


@router.post("/api/token/take", tags=["gateway"], summary="Token (gateway-compatible)")
def token_take(
    request: Request,
    conn: Conn,
    username: Annotated[str, Form()],
    password: Annotated[str, Form(description="As the gateway: MD5 upper-case hex")],
) -> Any:
    """The gateway's token endpoint: the password string is checked as sent (HIS clients send
    the MD5 upper-case hex of their secret, which is what the account was created with)."""
    client = client_address(request)
    try:
        body = auth.password_grant(
            conn, get_settings(request), username=username, password=password, totp=None,
            scope=None, address=client,
        )  # fmt: skip
    except auth.AuthError as exc:
        conn.commit()  # keep the failure count and the audit event
        return JSONResponse(
            status_code=401 if exc.status in (400, 401) else exc.status,
            content={"maKetQua": "401", "thongDiep": "Sai tên đăng nhập hoặc mật khẩu.",
                     "error": exc.error, "error_description": exc.description},
        )  # fmt: skip
    id_token = secrets.token_hex(16)
    api_key = {
        "access_token": body["access_token"],
        "id_token": id_token,
        "token_type": "bearer",
        "username": username,
        "expires_in": body["expires_in"],
    }
    return {"maKetQua": "200", "APIKey": api_key, **api_key}


def _gateway_actor(request: Request) -> Actor:
    """The caller at the gateway door (hssk.http.gate: bearer header, ``accessToken`` header
    or ``token`` parameter; a disabled account is refused as at every door)."""
    return gate.authenticate(request, "gateway").actor


def gateway_too_large(limit: int) -> JSONResponse:
    """The gateway's answer to a request over its size limit (code 1001, its own format)."""
    return _gateway(1001, f"Tệp quá lớn (tối đa {MAX_GATEWAY_FILE // 1024**2} MB, "
                    f"yêu cầu tối đa {limit // 1024**2} MB).", status=413)  # fmt: skip


# Request size limits of the ingest doors (hssk.http.limits; the rest of the API: 10 MB).
BODY_LIMITS = (
    BodyLimit("/api/v1/ingest/", MAX_UPLOAD + 16 * MB),
    BodyLimit("/api/qd130/", MAX_GATEWAY_BODY, gateway_too_large),
    BodyLimit("/api/hososuckhoe/", MAX_GATEWAY_BODY, gateway_too_large),
)


def _decode_file(text: str) -> bytes | None:
    compact = "".join((text or "").split())
    if not compact:
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _signature(
    request: Request, certs: list[Any], data: bytes
) -> tuple[xmlsig.SignatureResult, int | None]:
    """The file's XML signature, and the HTTP status refusing the file (None: accepted).

    ``certs``: the facility's registered certificates (``_certificates``). Refused: content
    changed after signing; a signer other than those certificates (once the facility
    registered one); no valid signature when the installation requires one
    (HSSK_REQUIRE_XML_SIGNATURE)."""
    result = xmlsig.check(data, certs)
    if result.status == "invalid":
        return result, 400
    if result.status == "unknown-signer" and certs:
        return result, 403
    if result.status != "valid" and get_settings(request).require_xml_signature:
        return result, 403
    return result, None


def _certificates(conn: psycopg.Connection[Any], actor: Actor) -> list[Any]:
    return unit_certificates(conn, actor.unit_id) if actor.unit_id else []


def _submit(
    request: Request,
    conn: psycopg.Connection[Any],
    actor: Actor | None,
    *,
    kind: str,
    data_b64: str,
    facility: str,
    province: str | None,
    suffix: str,
) -> JSONResponse:
    facility = (facility or "").strip()
    refusal = _gateway_refusal(conn, actor, facility, province)
    if refusal is not None:
        return refusal
    assert actor is not None
    data = _decode_file(data_b64)
    if data is not None and len(data) > MAX_GATEWAY_FILE:
        return gateway_too_large(MAX_GATEWAY_BODY)
    if data is None:
        return _gateway(
            205,
            "fileHSBase64 không phải chuỗi base64 hợp lệ.",
            status=400,
        )
    signature, refused = _signature(request, _certificates(conn, actor), data)
    if refused is not None:
        audit(conn, actor, "ingest", outcome="deny",
              detail={"maCSKCB": facility, "signature": signature.to_json()})  # fmt: skip
        return _gateway(refused, f"Chữ ký số không được chấp nhận: {signature.reason_vi}",
                        status=refused)  # fmt: skip
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = _upload_dir(request) / f"{facility or 'hoso'}_{digest}{suffix}"
    path.write_bytes(data)
    job_id = jobstore.create_job(
        conn, kind, [str(path)], unit_id=actor.unit_id, created_by=actor.account_id
    )
    conn.commit()
    summary = runner.run_job(get_database(request), job_id, workers=0)
    audit(conn, actor, "ingest", outcome="allow",
          detail={"job": job_id, "kind": kind, "signature": signature.to_json()})  # fmt: skip
    return _gateway_answer(summary, signature, f"HSSK{job_id:012d}")


def _gateway_refusal(
    conn: psycopg.Connection[Any], actor: Actor | None, facility: str, province: str | None
) -> JSONResponse | None:
    """The gateway's answer when the caller may not submit for ``facility`` (audited where
    the policy refuses), or a province that is not the facility's."""
    if actor is None or not actor.authenticated:
        return _gateway(
            401, "Xác thực không thành công: accessToken không hợp lệ hoặc đã hết hạn.", status=401
        )
    if not permissions.can_write(actor):
        return _gateway(403, "Tài khoản không có quyền gửi hồ sơ.", status=403)
    refusal = permissions.facility_refusal(conn, actor, facility)
    if refusal is not None:
        audit(conn, actor, "ingest", outcome="deny",
              detail={"maCSKCB": facility, "reason": refusal[1]})  # fmt: skip
        return _gateway(403, refusal[0], status=403)
    if province is not None and facility and province.strip() != facility[:2]:
        return _gateway(
            400, f"maTinh '{province}' phải là 2 ký tự đầu của maCSKCB '{facility}'.", status=400
        )
    return None


def _gateway_answer(
    summary: jobstore.Summary, signature: xmlsig.SignatureResult, tx: str
) -> JSONResponse:
    """Taken whole, or refused with the first reasons (the gateway takes a hồ sơ or not)."""
    if summary.quarantined:
        reasons = "; ".join(
            f"{e['record']}: {e.get('reason_vi') or e['reason']}" for e in summary.errors[:10]
        )
        return _gateway(
            400,
            f"Hồ sơ có {summary.quarantined} lỗi, chưa được tiếp nhận: {reasons}",
            tx,
            status=400,
        )
    signed = f" Chữ ký số hợp lệ: {signature.signer}." if signature.status == "valid" else ""
    return _gateway(200, f"Tiếp nhận hồ sơ thành công.{signed}", tx)


def _qd130(
    request: Request,
    conn: Conn,
    ma_cskcb: str,
    ma_tinh: str | None,
    file_b64: str,
) -> JSONResponse:
    actor = _gateway_actor(request)
    return _submit(request, conn, actor, kind="xml130", data_b64=file_b64, facility=ma_cskcb,
                   province=ma_tinh, suffix=".xml")  # fmt: skip


def _make_qd130(path: str, summary: str) -> None:
    def endpoint(
        request: Request,
        conn: Conn,
        fileHSBase64: Annotated[str, Form()],
        maCSKCB: Annotated[str, Form()] = "",
        maTinh: Annotated[str | None, Form()] = None,
        username: Annotated[str | None, Form()] = None,
        loaiHoSo: Annotated[str | None, Form()] = None,
        accessToken: Annotated[str | None, Header()] = None,
        tokenId: Annotated[str | None, Header()] = None,
        passwordHash: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        return _qd130(request, conn, maCSKCB, maTinh, fileHSBase64)

    endpoint.__name__ = path.rsplit("/", 1)[-1]
    router.post(
        path, tags=["gateway"], summary=summary, form_limits={"max_part_size": MAX_GATEWAY_BODY}
    )(endpoint)


for _path, _summary in (
    ("/api/qd130/guiHoSoXmlQD4750", "Submit a hồ sơ (QĐ 4750)"),
    ("/api/qd130/guiHoSoXmlQD3176", "Submit a hồ sơ (QĐ 3176)"),
    ("/api/qd130/checkInKcbQd4750", "XML0 check-in (QĐ 4750): opens the encounter"),
    ("/api/qd130/checkInKcbQd3176", "XML0 check-in (QĐ 3176): opens the encounter"),
):
    _make_qd130(_path, _summary)


@router.post(
    "/api/hososuckhoe/guiGiayToDienTu",
    tags=["gateway"],
    summary="Birth/death papers",
    form_limits={"max_part_size": MAX_GATEWAY_BODY},
)
def gui_giay_to(
    request: Request,
    conn: Conn,
    loai_hs: Annotated[str | None, Form()] = None,
    fileBase64Str: Annotated[str | None, Form()] = None,
    fileHSBase64: Annotated[str | None, Form()] = None,
    maCSKCB: Annotated[str, Form()] = "",
    accessToken: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Giấy chứng sinh (61, HSDLGCS) or giấy báo tử (60, HSDLGBT)."""
    if loai_hs is not None and loai_hs not in ("60", "61"):
        return _gateway(
            205,
            f"loai_hs '{loai_hs}' không hỗ trợ (60 giấy báo tử, 61 giấy chứng sinh).",
            status=400,
        )
    actor = _gateway_actor(request)
    data = fileBase64Str or fileHSBase64 or ""
    return _submit(request, conn, actor, kind="edoc", data_b64=data, facility=maCSKCB,
                   province=None, suffix=".xml")  # fmt: skip
