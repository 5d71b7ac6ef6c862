"""Settings read from the environment (``HSSK_*``), with safe defaults for a laptop."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _env_bool(name: str) -> bool | None:
    """True/False from 1/true/yes or 0/false/no; None when unset."""
    raw = os.environ.get(name, "").strip().lower()
    return None if not raw else raw in ("1", "true", "yes", "on")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one HSSK installation."""

    database_url: str | None
    data_dir: Path
    pool_min: int = 2
    pool_max: int = 10
    base_url: str = "http://127.0.0.1:8000"
    default_lang: str = "vi"
    # Matching thresholds (registry): above `match_upper` link, between → review queue.
    match_upper: float = 0.92
    match_lower: float = 0.60
    # Gateway submissions must carry a valid facility XML signature (CHUKYDONVI); when off,
    # unsigned files are accepted (tampered or foreign-signed ones never are).
    require_xml_signature: bool = False
    # HTTP hardening (hssk.http): request body limit for JSON and forms (larger doors have
    # their own), largest request head, proxies whose X-Forwarded-For is believed (none:
    # the connecting address is the client), and whether the site is served over HTTPS
    # (session cookie Secure, HSTS). None for ``https``: decided from the request's scheme.
    max_body: int = 10 * 1024**2
    max_header: int = 64 * 1024
    trusted_proxies: tuple[str, ...] = ()
    https: bool | None = None
    # Delivered outbox events are kept this many days, then purged (``hssk share purge``).
    outbox_retention_days: int = 30
    # Hash partitions of the person-keyed store (records): fixed when the store is created.
    store_partitions: int = 16
    # Batch MPI (registry.dedup): records per Splink chunk (its blocking joins hold one chunk's
    # hash tables at a time) and DuckDB's memory limit ('4GB'; None: DuckDB's 80 % of RAM).
    dedup_chunk_records: int = 1_000_000
    dedup_memory_limit: str | None = None
    # A register's first load links its persons this many distinct records at a time: one
    # slice's prepared records and batch MPI fit in memory (~7 GB at 1 M), a whole province's
    # register does not (~36 GB of them at 10.5 M)
    initial_slice_records: int = 1_000_000
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def secret_file(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def retired_secrets_file(self) -> Path:
        """Secrets replaced by ``hssk keys rotate token``: they still verify what they signed
        until their ``until`` (JSON list of {"key", "until"})."""
        return self.data_dir / "secret.key.retired"

    def secret_keys(self) -> list[str]:
        """The current secret first, then the retired ones still within their overlap."""
        keys = [self.secret_key()]
        path = self.retired_secrets_file
        if path.exists():
            now = datetime.now(UTC)
            keys += [
                str(k["key"]) for k in json.loads(path.read_text())
                if datetime.fromisoformat(k["until"]) > now and k["key"] not in keys
            ]  # fmt: skip
        return keys

    def secret_key(self) -> str:
        """The installation secret: from HSSK_SECRET_KEY, else generated once in the data dir.

        It is never part of the repository; a fresh installation makes its own.
        """
        env = os.environ.get("HSSK_SECRET_KEY")
        if env:
            return env
        path = self.secret_file
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        write_private(path, key.encode())
        return key


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once (mode 600): a reader sees the old or the new file,
    never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rotate_secret(settings: Settings, overlap: timedelta) -> tuple[str, str, datetime]:
    """A new installation secret signs from now on; the old one still verifies what it signed
    for ``overlap`` (zero: at once void, on a suspected leak). Returns (old id, new id, until).

    Not with HSSK_SECRET_KEY set: that secret belongs to whoever sets the environment."""
    if os.environ.get("HSSK_SECRET_KEY"):
        raise ValueError(
            "HSSK_SECRET_KEY được đặt trong môi trường: đổi giá trị biến đó, hoặc bỏ biến để HSSK "
            "tự quản lý khóa trong thư mục dữ liệu / HSSK_SECRET_KEY is set: change that "
            "variable, or remove it to let HSSK keep the secret in the data dir"
        )
    old = settings.secret_key()
    now = datetime.now(UTC)
    until = now + overlap
    path = settings.retired_secrets_file
    kept = [k for k in json.loads(path.read_text()) if datetime.fromisoformat(k["until"]) > now
            ] if path.exists() else []  # fmt: skip
    if overlap > timedelta(0):
        kept.append({"key": old, "until": until.isoformat(), "id": secret_id(old)})
    else:  # a leak: nothing signed before stays valid
        kept = []
    write_private(path, json.dumps(kept, indent=1).encode())
    new = secrets.token_urlsafe(48)
    write_private(settings.secret_file, new.encode())
    return secret_id(old), secret_id(new), until


def secret_id(key: str) -> str:
    """A short public name of a secret (the ``kid`` of what it signs); reveals nothing of it."""
    return hashlib.sha256(b"hssk-secret-id:" + key.encode()).hexdigest()[:12]


def load_settings() -> Settings:
    """Read settings from the environment each time (tests change it)."""
    return Settings(
        database_url=os.environ.get("HSSK_DATABASE_URL") or None,
        data_dir=Path(os.environ.get("HSSK_DATA_DIR", ".hssk")).resolve(),
        pool_min=_env_int("HSSK_POOL_MIN", 2),
        pool_max=_env_int("HSSK_POOL_MAX", 10),
        outbox_retention_days=_env_int("HSSK_OUTBOX_RETENTION_DAYS", 30),
        store_partitions=_env_int("HSSK_STORE_PARTITIONS", 16),
        dedup_chunk_records=_env_int("HSSK_DEDUP_CHUNK_RECORDS", 1_000_000),
        dedup_memory_limit=os.environ.get("HSSK_DEDUP_MEMORY_LIMIT") or None,
        initial_slice_records=_env_int("HSSK_INITIAL_SLICE_RECORDS", 1_000_000),
        base_url=os.environ.get("HSSK_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        default_lang=os.environ.get("HSSK_LANG", "vi"),
        match_upper=_env_float("HSSK_MATCH_UPPER", 0.92),
        match_lower=_env_float("HSSK_MATCH_LOWER", 0.60),
        require_xml_signature=_env_bool("HSSK_REQUIRE_XML_SIGNATURE") is True,
        max_body=_env_int("HSSK_MAX_BODY", 10 * 1024**2),
        max_header=_env_int("HSSK_MAX_HEADER", 64 * 1024),
        trusted_proxies=tuple(
            p.strip() for p in os.environ.get("HSSK_TRUSTED_PROXIES", "").split(",") if p.strip()
        ),
        https=_env_bool("HSSK_HTTPS"),
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Settings of this process, read once."""
    return load_settings()
