"""Partners (national insurance DB, VNeID, city app): configuration kept as data.

The JSON file (``hssk/share/data/partners.json``, or ``HSSK_SHARE_PARTNERS``) is loaded into
table ``share_partner`` with ``sync``; the outbox hook and the worker read the table, so every
process agrees on who receives what.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg

from hssk.catalog.catalogs import get as get_catalog

DEFAULT_FILE = Path(__file__).parent / "data" / "partners.json"
# How a partner is fed: ``fieldset`` — the person's catalog field set as JSON, per person;
# ``xml130-gateway`` — each visit the gateway lacks as a signed QĐ 130 hồ sơ
# (``share.gateway``); ``ksk-hub`` — each health check to the Ministry's hub, signed, within
# 24 h (``share.ksk``).
CHANNELS = ("fieldset", "xml130-gateway", "ksk-hub")


class PartnerError(ValueError):
    """The partner configuration is invalid (names the partner and the fix)."""


@dataclass(frozen=True)
class SensitiveRule:
    category: str  # sensitivity label, e.g. HIV
    basis: str  # the legal basis that allows sending it


@dataclass(frozen=True)
class Partner:
    id: str
    endpoint: str
    catalog: str
    name_vi: str = ""
    name_en: str = ""
    auth: dict[str, Any] = field(default_factory=dict)
    max_attempts: int = 8
    timeout_s: float = 10.0
    allow_sensitive: tuple[SensitiveRule, ...] = ()
    enabled: bool = True
    channel: str = "fieldset"
    # who signs what a channel sends: "platform" (the platform's certificate) or the unit's
    # {"key_file": ..., "cert_file": ...} (PEM files kept outside the repository)
    signer: Any = "platform"

    @property
    def sensitive_labels(self) -> list[str]:
        return [r.category for r in self.allow_sensitive]

    def headers(self) -> dict[str, str]:
        """Auth headers; the token comes from the environment, never from the file."""
        kind = self.auth.get("type", "none")
        if kind == "bearer":
            token = os.environ.get(str(self.auth.get("token_env", "")), "")
            return {"Authorization": f"Bearer {token}"} if token else {}
        if kind == "header":
            value = os.environ.get(str(self.auth.get("value_env", "")), "")
            return {str(self.auth["name"]): value} if value else {}
        return {}


def from_dict(raw: dict[str, Any]) -> Partner:
    pid = str(raw.get("id") or "")
    if not pid:
        raise PartnerError("a partner has no 'id'")
    channel = str(raw.get("channel") or "fieldset")
    if channel not in CHANNELS:
        raise PartnerError(f"partner {pid}: channel '{channel}' unknown; use one of {CHANNELS}")
    for key in ("endpoint", "catalog") if channel == "fieldset" else ("endpoint",):
        if not raw.get(key):
            raise PartnerError(f"partner {pid}: '{key}' is missing")
    if not str(raw["endpoint"]).startswith(("http://", "https://")):
        raise PartnerError(f"partner {pid}: endpoint must be an http(s) URL")
    if channel == "fieldset":
        try:
            get_catalog(str(raw["catalog"]))
        except KeyError as exc:
            raise PartnerError(f"partner {pid}: {exc.args[0]}") from exc
    auth = dict(raw.get("auth") or {})
    if auth.get("type") == "gateway-token" and not auth.get("token_url"):
        raise PartnerError(
            f"partner {pid}: auth type gateway-token needs 'token_url' (the gateway's "
            "/api/token/take), 'username' and 'password_env'"
        )
    signer = raw.get("signer") or "platform"
    if signer != "platform" and not (
        isinstance(signer, dict) and signer.get("key_file") and signer.get("cert_file")
    ):
        raise PartnerError(
            f'partner {pid}: \'signer\' is "platform" or {{"key_file": ..., "cert_file": ...}} '
            "(the unit's private key and certificate, PEM)"
        )
    rules = []
    for rule in raw.get("allow_sensitive") or ():
        if not isinstance(rule, dict) or not rule.get("category") or not rule.get("basis"):
            raise PartnerError(
                f"partner {pid}: each allow_sensitive rule needs 'category' and 'basis' "
                "(the legal basis that allows sending that category)"
            )
        rules.append(SensitiveRule(str(rule["category"]), str(rule["basis"])))
    return Partner(
        id=pid,
        endpoint=str(raw["endpoint"]),
        catalog=str(raw.get("catalog") or ""),
        name_vi=str(raw.get("name_vi") or pid),
        name_en=str(raw.get("name_en") or pid),
        auth=auth,
        max_attempts=int(raw.get("max_attempts", 8)),
        timeout_s=float(raw.get("timeout_s", 10)),
        allow_sensitive=tuple(rules),
        enabled=bool(raw.get("enabled", True)),
        channel=channel,
        signer=signer,
    )


def to_dict(p: Partner) -> dict[str, Any]:
    return {
        "id": p.id,
        "endpoint": p.endpoint,
        "catalog": p.catalog,
        "name_vi": p.name_vi,
        "name_en": p.name_en,
        "auth": p.auth,
        "max_attempts": p.max_attempts,
        "timeout_s": p.timeout_s,
        "allow_sensitive": [{"category": r.category, "basis": r.basis} for r in p.allow_sensitive],
        "enabled": p.enabled,
        "channel": p.channel,
        "signer": p.signer,
    }


def read_file(path: Path | None = None) -> list[Partner]:
    path = path or Path(os.environ.get("HSSK_SHARE_PARTNERS") or DEFAULT_FILE)
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PartnerError(f"{path}: cannot read the partner file ({exc})") from exc
    return [from_dict(p) for p in data.get("partners", [])]


def sync(conn: psycopg.Connection[Any], partners: list[Partner]) -> None:
    """Make ``share_partner`` hold exactly ``partners`` (others are disabled, not deleted)."""
    for p in partners:
        conn.execute(
            """INSERT INTO share_partner (id, config, enabled) VALUES (%s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET config = excluded.config,
                 enabled = excluded.enabled, updated_at = now()""",
            (p.id, orjson.dumps(to_dict(p)).decode(), p.enabled),
        )
    conn.execute(
        "UPDATE share_partner SET enabled = false WHERE NOT (id = ANY(%s))",
        ([p.id for p in partners],),
    )


def load(conn: psycopg.Connection[Any], *, enabled_only: bool = True) -> dict[str, Partner]:
    rows = conn.execute(
        "SELECT config, enabled FROM share_partner WHERE enabled OR NOT %s ORDER BY id",
        (enabled_only,),
    ).fetchall()
    return {p.id: p for p in (from_dict({**r[0], "enabled": r[1]}) for r in rows)}
