"""Local simulators of the two channels (tests and the demo), strict about the format.

``hssk share channel-simulator`` serves on 127.0.0.1:

* ``POST /api/qd130/guiHoSoXmlQD3176`` (and ``…QD4750``) — the insurance gateway: the form of
  the submit call; the file must be base64, a GIAMDINHHS envelope of exactly one hồ sơ with
  XML1 and XML8, signed in CHUKYDONVI by a trusted certificate (checked by the ingest side's
  ``xmlsig.check``), every inner table under its root and record path with exactly the fields
  of the QĐ 4750 appendix in its order, no value longer than the appendix allows, numbers
  where it says Số (``ingest.xml130_tables``), the visit's required fields filled, and a
  MA_LK the gateway does not hold yet. Answers in the gateway's shape (``maKetQua``,
  ``maGiaoDich``, ``thoiGianTiepNhan``, ``thongDiep``) with ``share.gateway``'s codes.
* ``POST /api/token/take`` — the gateway's token (with ``password``: ``username`` and the
  password's upper-case MD5; the tokens it issues are then required on the other calls).
* ``POST /api/ksk/guiHoSoKSK`` — the health-check hub: ``share.ksk.check`` (template, fields
  and order, lengths, formats, required fields, signature), then the duplicate check.
* ``GET /_stats`` — counters; ``GET /_received`` — what each side accepted.

``fail_rate``: a share of calls answered 503, half of them *after* the hồ sơ was stored (the
sender sees an error for something the receiver has, then meets the duplicate check).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509
from lxml import etree

from hssk.ingest import xmlsig
from hssk.ingest.xml130_tables import REFUSED as REFUSED_TABLES
from hssk.ingest.xml130_tables import appendix, tables
from hssk.ingest.xmlparse import parser_kwargs
from hssk.kernel import clock
from hssk.share import ksk
from hssk.share.simulator import JsonHandler
from hssk.share.xml130_out import REQUIRED

GATEWAY_PATHS = ("/api/qd130/guiHoSoXmlQD3176", "/api/qd130/guiHoSoXmlQD4750")
TOKEN_PATH = "/api/token/take"
HUB_PATH = "/api/ksk/guiHoSoKSK"
MAX_FILE = 10 * 1024 * 1024


@dataclass
class ChannelState:
    trusted: list[x509.Certificate]
    token: str | None = None  # accessToken the gateway requires (None: any)
    password: str | None = None  # with it, tokens come from POST /api/token/take
    fail_rate: float = 0.0
    seed: int | None = None
    hoso: dict[str, dict[str, Any]] = field(default_factory=dict)  # (facility|MA_LK) → receipt
    ksk: dict[str, dict[str, Any]] = field(default_factory=dict)  # maLuotKham → receipt
    counters: dict[str, int] = field(default_factory=dict)
    issued: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1


class Refused(Exception):
    def __init__(self, code: str, vi: str, status: int = 400):
        self.code, self.vi, self.status = code, vi, status
        super().__init__(vi)


def _strict_parse(data: bytes, what: str) -> Any:
    try:
        return etree.fromstring(data, etree.XMLParser(**parser_kwargs()))
    except etree.XMLSyntaxError as exc:
        raise Refused("205", f"{what}: XML không hợp lệ ({exc})") from None


def _value_problem(name: str, value: str, max_len: int | None, number: bool) -> str | None:
    if number:
        try:
            float(value)
        except ValueError:
            return f"'{value[:40]}' không phải số (phụ lục QĐ 4750: kiểu Số)"
        length = len(value) - (value[:1] in "+-") - ("." in value)
    else:
        length = len(value)
    if max_len is not None and length > max_len:
        return f"dài {length} ký tự, vượt {max_len} của phụ lục QĐ 4750"
    return None


def check_table(name: str, data: bytes) -> list[dict[str, str]]:
    """The rows of one inner file, held strictly to the appendix; Refused says what is wrong."""
    if name in REFUSED_TABLES or name not in tables():
        raise Refused("400", f"LOAIHOSO '{name}' không được gửi qua cổng")
    table = tables()[name]
    root = _strict_parse(data, name)
    if root.tag != table.root:
        raise Refused("400", f"{name}: thẻ gốc <{root.tag}>, cần <{table.root}>")
    path = table.record_path.split("/")[1:]
    rows = [root] if table.single else root.findall("/".join(path))
    if not rows:
        raise Refused("400", f"{name}: không có bản ghi theo đường dẫn {table.record_path}")
    fields = appendix()[name]
    expected = [f.name for f in fields]
    out = []
    for i, row in enumerate(rows, 1):
        names = [c.tag for c in row if isinstance(c.tag, str)]
        if names != expected:
            bad = next((n for n in names if n not in expected), None)
            gone = next((n for n in expected if n not in names), None)
            at = next((a for a, b in zip(names, expected, strict=False) if a != b), "")
            why = (
                f"trường {bad} không có trong phụ lục" if bad
                else f"thiếu trường {gone}" if gone else f"trường {at} sai thứ tự"
            )  # fmt: skip
            raise Refused("400", f"{name} dòng {i}: {why}")
        values = {c.tag: (c.text or "").strip() for c in row if isinstance(c.tag, str)}
        for f in fields:
            v = values[f.name]
            problem = _value_problem(f.name, v, f.max_len, f.number) if v else None
            if problem:
                raise Refused("400", f"{name} dòng {i}: {f.name} {problem}")
        out.append(values)
    return out


def check_hoso(form: dict[str, str], trusted: list[x509.Certificate]) -> tuple[str, str, bytes]:
    """(facility, MA_LK, file) of a submission the gateway takes; Refused otherwise."""
    if form.get("loaiHoSo") != "130":
        raise Refused("400", f"loaiHoSo '{form.get('loaiHoSo')}' không đúng, cần 130")
    try:
        data = base64.b64decode(form.get("fileHSBase64", ""), validate=True)
    except (binascii.Error, ValueError):
        raise Refused("205", "fileHSBase64 không phải base64 hợp lệ") from None
    if len(data) > MAX_FILE:
        raise Refused("1001", "tệp hồ sơ vượt dung lượng cho phép")
    signature = xmlsig.check(data, trusted)
    if signature.status != "valid":
        raise Refused("403", f"chữ ký số: {signature.reason_vi}", 403)
    root = _strict_parse(data, "tệp hồ sơ")
    if root.tag != "GIAMDINHHS":
        raise Refused("205", f"thẻ gốc <{root.tag}>, cần <GIAMDINHHS>")
    facility = (root.findtext("THONGTINDONVI/MACSKCB") or "").strip()
    if facility != form.get("maCSKCB") or form.get("maTinh") != facility[:2]:
        raise Refused("400", f"maCSKCB/maTinh không khớp MACSKCB '{facility}' của tệp")
    hosos = root.findall("THONGTINHOSO/DANHSACHHOSO/HOSO")
    count = (root.findtext("THONGTINHOSO/SOLUONGHOSO") or "").strip()
    if len(hosos) != 1 or count != "1":
        raise Refused("400", f"mỗi tệp gửi đúng một hồ sơ (có {len(hosos)}, SOLUONGHOSO={count})")
    found: dict[str, list[dict[str, str]]] = {}
    for fh in hosos[0].findall("FILEHOSO"):
        name = (fh.findtext("LOAIHOSO") or "").strip()
        try:
            inner = base64.b64decode(fh.findtext("NOIDUNGFILE") or "", validate=True)
        except (binascii.Error, ValueError):
            raise Refused("205", f"{name}: NOIDUNGFILE không phải base64") from None
        if name in found:
            raise Refused("400", f"{name} xuất hiện hai lần trong hồ sơ")
        found[name] = check_table(name, inner)
    for name in ("XML1", "XML8"):
        if name not in found:
            raise Refused("400", f"hồ sơ thiếu {name} (lượt khám gửi tối thiểu XML1 và XML8)")
    header = found["XML1"][0]
    empty = [f for f in REQUIRED if not header.get(f)]
    if empty:
        raise Refused("400", f"XML1: trường bắt buộc bị trống: {', '.join(empty)}")
    ma_lk = header["MA_LK"]
    if header["MA_CSKCB"] != facility:
        raise Refused("400", f"MA_CSKCB {header['MA_CSKCB']} khác MACSKCB {facility}")
    for name, rows in found.items():
        if any(r.get("MA_LK") != ma_lk for r in rows):
            raise Refused("400", f"{name}: MA_LK khác MA_LK {ma_lk} của XML1")
    return facility, ma_lk, data


def _answer(code: str, message: str, tx: str = "") -> dict[str, str]:
    return {
        "maKetQua": code,
        "maGiaoDich": tx,
        "thoiGianTiepNhan": clock.now_vn().strftime("%Y%m%d%H%M%S"),
        "thongDiep": message,
    }


def _handler(state: ChannelState) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            with state.lock:
                if self.path.startswith("/_stats"):
                    self._reply(200, {**state.counters, "hoso": len(state.hoso),
                                      "ksk": len(state.ksk)})  # fmt: skip
                elif self.path.startswith("/_received"):
                    self._reply(200, {"hoso": list(state.hoso.values()),
                                      "ksk": list(state.ksk.values())})  # fmt: skip
                else:
                    self._reply(404, {"error": "GET /_stats or /_received"})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?")[0]
            if path == TOKEN_PATH:
                self._token(raw)
            elif path in GATEWAY_PATHS:
                self._gateway(raw)
            elif path == HUB_PATH:
                self._hub(raw)
            else:
                self._reply(404, {"error": f"POST {' | '.join(GATEWAY_PATHS)} | {HUB_PATH}"})

        def _fail_before(self, roll: float) -> bool:
            if roll < state.fail_rate / 2:
                state.count("failed")
                self._reply(503, _answer("500", "lỗi giả lập trước khi lưu"))
                return True
            return False

        def _stored(self, roll: float, body: dict[str, str]) -> None:
            if roll < state.fail_rate:
                state.count("failed")
                self._reply(503, _answer("500", "lỗi giả lập sau khi lưu (mất câu trả lời)"))
            else:
                self._reply(200, body)

        def _token(self, raw: bytes) -> None:
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
            with state.lock:
                want = hashlib.md5((state.password or "").encode(), usedforsecurity=False)
                if state.password is None or form.get("password") != want.hexdigest().upper():
                    self._reply(401, _answer("401", "sai tên đăng nhập hoặc mật khẩu"))
                    return
                token = secrets.token_urlsafe(24)
                state.issued.add(token)
                state.count("token.issued")
                self._reply(200, {**_answer("200", "ok"), "access_token": token,
                                  "id_token": secrets.token_urlsafe(8), "expires_in": 300})  # fmt: skip

        def _authorized(self) -> bool:
            given = self.headers.get("accessToken")
            if state.password is not None:
                return given in state.issued
            return state.token is None or given == state.token

        def _admit(self, channel: str) -> float | None:
            """Count the request, check its token and roll the simulated failure (under the
            lock); the roll when the request goes on, None when it was answered already."""
            state.count(f"{channel}.requests")
            if not self._authorized():
                state.count(f"{channel}.refused")
                self._reply(401, _answer("401", "accessToken không hợp lệ"))
                return None
            roll = state.rng.random()
            return None if self._fail_before(roll) else roll

        def _gateway(self, raw: bytes) -> None:
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
            with state.lock:
                roll = self._admit("gateway")
                if roll is None:
                    return
                try:
                    facility, ma_lk, data = check_hoso(form, state.trusted)
                except Refused as exc:
                    state.count("gateway.refused")
                    self._reply(exc.status, _answer(exc.code, exc.vi))
                    return
                key = f"{facility}|{ma_lk}"
                first = state.hoso.get(key)
                if first is not None:
                    state.count("gateway.duplicates")
                    self._reply(409, _answer(
                        "409", f"hồ sơ MA_LK {ma_lk} đã được tiếp nhận", first["maGiaoDich"]))  # fmt: skip
                    return
                tx = f"GD{len(state.hoso) + 1:010d}"
                state.hoso[key] = {"maGiaoDich": tx, "maCSKCB": facility, "maLk": ma_lk,
                                   "sha256": hashlib.sha256(data).hexdigest(),
                                   "fileHSBase64": form["fileHSBase64"]}  # fmt: skip
                state.count("gateway.accepted")
                self._stored(roll, _answer("200", "Tiếp nhận hồ sơ thành công.", tx))

        def _hub(self, raw: bytes) -> None:
            with state.lock:
                roll = self._admit("ksk")
                if roll is None:
                    return
                try:
                    body = json.loads(raw)
                    refusal = ksk.check(body, state.trusted)
                except (json.JSONDecodeError, AttributeError):
                    refusal = ksk.Refusal("400", None, "thân yêu cầu không phải JSON", "not JSON")
                if refusal is not None:
                    state.count("ksk.refused")
                    self._reply(403 if refusal.code == "403" else 400,
                                {**_answer(refusal.code, refusal.vi), "truong": refusal.field})  # fmt: skip
                    return
                hoso = json.loads(body["hoSo"])
                key = str(hoso["maLuotKham"])
                if key in state.ksk:
                    state.count("ksk.duplicates")
                    self._reply(409, _answer("409", f"lượt khám {key} đã được tiếp nhận",
                                             state.ksk[key]["maGiaoDich"]))  # fmt: skip
                    return
                tx = f"KSK{len(state.ksk) + 1:09d}"
                state.ksk[key] = {"maGiaoDich": tx, **hoso,
                                  "nhanLuc": clock.now().isoformat()}  # fmt: skip
                state.count("ksk.accepted")
                self._stored(roll, _answer("200", "Tiếp nhận hồ sơ KSK thành công.", tx))

    return Handler


def serve(port: int, state: ChannelState, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A started-not-yet-serving server bound to loopback (call ``serve_forever``)."""
    server = ThreadingHTTPServer((host, port), _handler(state))
    server.daemon_threads = True
    return server
