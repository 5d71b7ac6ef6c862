"""Authentication: the OAuth 2 grants behind ``POST /auth/token``.

* ``password`` — staff and clinicians: username + password (argon2) + TOTP code when enrolled;
* ``urn:hssk:params:oauth:grant-type:otp`` — citizens: CCCD or phone number + a one-time code
  sent through the notification gateway (``request_login_code``);
* ``client_credentials`` — facility and national systems: a JWT assertion signed with the
  unit's private key (SMART Backend Services: ES256/EdDSA, ``aud`` = token URL, ``jti`` used
  once, at most 5 minutes of life);
* ``refresh_token`` — rotation: each refresh token is used once; reuse revokes the family.

Failed attempts slow further ones down (exponential back-off per name and address, per name,
per address; never a lock an attacker could set on someone else's account); they are written
before the error is returned, so the caller must commit.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import psycopg
import pyotp

from hssk.access import accounts, notify, signing, tokens
from hssk.access.accounts import Account
from hssk.access.actor import ANONYMOUS, Actor
from hssk.access.audit import record as audit
from hssk.kernel.config import Settings

GRANT_PASSWORD = "password"
GRANT_OTP = "urn:hssk:params:oauth:grant-type:otp"
GRANT_CLIENT = "client_credentials"
GRANT_REFRESH = "refresh_token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

ACCESS_TTL = 900
REFRESH_TTL = timedelta(days=7)
SYSTEM_TTL = 300
THROTTLE_WINDOW = timedelta(minutes=15)
OTP_TTL = timedelta(minutes=5)
OTP_ATTEMPTS = 5
OTP_PER_WINDOW = 3
MAX_ASSERTION_LIFE = 300

_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.(read|write|\*|c?r?u?d?s?)$")


class AuthError(Exception):
    """An OAuth error: ``error`` code, description, HTTP status. ``reason`` says, for the pages
    and never in the OAuth answer, which of :data:`REASONS` it was; ``attempts_left`` how many
    tries the current one-time code still has (None: not known)."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        retry_after: int = 0,
        *,
        reason: str = "",
        attempts_left: int | None = None,
    ):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status
        self.retry_after = retry_after
        self.reason, self.attempts_left = reason, attempts_left


# Why a citizen's login was refused, for the login page to say so (machine-readable):
WRONG_CODE = "wrong_code"  # the code does not match (attempts_left may say how many remain)
EXPIRED_CODE = "expired_code"  # the latest code has expired: ask for a new one
CODE_EXHAUSTED = "code_exhausted"  # the latest code had OTP_ATTEMPTS wrong tries: ask again
THROTTLED = "throttled"  # too many failures: back-off, retry after ``retry_after`` seconds
SMS_LIMIT = "sms_limit"  # too many codes requested: retry after ``retry_after`` seconds
REASONS = (WRONG_CODE, EXPIRED_CODE, CODE_EXHAUSTED, THROTTLED, SMS_LIMIT)


_CLIENT = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def client_name(client_id: str | None) -> str | None:
    """The (public) client an interactive login came through, as recorded in the audit trail
    (e.g. ``vneid-app``, ``his-bv01``); anything odd is dropped, not trusted."""
    return client_id if client_id and _CLIENT.match(client_id) else None


# --- scopes -----------------------------------------------------------------------------


def _covers(granted: str, wanted: str) -> bool:
    g, w = _SCOPE.match(granted), _SCOPE.match(wanted)
    if not g or not w:
        return granted == wanted
    if g.group(1) != w.group(1) or g.group(2) not in ("*", w.group(2)) or not w.group(3):
        return False
    return _letters(w.group(3)) <= _letters(g.group(3))


def _letters(mode: str) -> set[str]:
    """The SMART v2 operations a mode grants."""
    return set({"read": "rs", "write": "cud", "*": "cruds"}.get(mode, mode))


def negotiate_scopes(allowed: Iterable[str], requested: str | None) -> list[str]:
    """The scopes a token gets: those requested (all allowed when none), never more."""
    allowed = list(allowed)
    if not requested or not requested.strip():
        return sorted(allowed)
    out = []
    for s in requested.split():
        if s in ("openid", "offline_access", "fhirUser", "launch/patient"):
            continue
        m = _SCOPE.match(s)
        if not m or not m.group(3):
            raise AuthError("invalid_scope", f"malformed scope {s!r} (e.g. patient/*.read)")
        if not any(_covers(a, s) for a in allowed):
            raise AuthError("invalid_scope", f"scope {s!r} is not granted to this account")
        out.append(s)
    if not out:
        raise AuthError("invalid_scope", "no usable scope requested")
    return sorted(set(out))


# --- throttling ---------------------------------------------------------------------------
# Failed attempts slow down further ones, they never lock an account: a fixed lock after a few
# wrong codes would let anyone who knows a citizen's CCCD shut them out. Each failure is
# counted under three keys, and each key allows a few free failures within THROTTLE_WINDOW,
# then makes the next attempt wait 2, 4, 8… seconds after the last failure, up to its cap:
# * the name tried from this address (a guesser's own attempts): slowed hard;
# * the name from anywhere (guessers spread over addresses): capped at a minute, so the
#   account's owner is delayed, never shut out;
# * the address, whatever the name (one machine trying many names).
# Names are counted whether or not an account has them, so the answers (invalid_grant, or
# slow_down with Retry-After) never tell which accounts exist.


@dataclass(frozen=True)
class Backoff:
    prefix: str
    free: int  # failures within the window before the next attempt must wait
    cap: timedelta  # the longest wait


PAIR = Backoff("pair", free=3, cap=timedelta(minutes=15))
NAME = Backoff("name", free=10, cap=timedelta(minutes=1))
ADDRESS = Backoff("addr", free=30, cap=timedelta(minutes=15))
MAX_ADDRESS_FAILURES = ADDRESS.free  # per client address within THROTTLE_WINDOW, then waits


def _keys(subject: str | None, address: str | None) -> list[tuple[Backoff, str]]:
    name = (subject or "").strip().lower()[:64]
    keys: list[tuple[Backoff, str]] = []
    if address:
        keys.append((ADDRESS, f"addr:{address}"))  # the key the address throttle always used
    if name:
        keys.append((NAME, f"name:{name}"))
        if address:
            keys.append((PAIR, f"pair:{name}|{address}"))
    return keys


def _wait(conn: psycopg.Connection[Any], rule: Backoff, key: str) -> float:
    """Seconds an attempt under ``key`` must still wait (0: none)."""
    row = conn.execute(
        """SELECT count(*), extract(epoch FROM max(at) + make_interval(secs => least(
                    %s, power(2, greatest(count(*) - %s + 1, 0))::float8)) - now())
           FROM login_failure WHERE key = %s AND at > now() - %s""",
        (rule.cap.total_seconds(), rule.free, key, THROTTLE_WINDOW),
    ).fetchone()
    if row is None or row[0] < rule.free or row[1] is None:
        return 0.0
    return max(float(row[1]), 0.0)


def _throttled(conn: psycopg.Connection[Any], subject: str | None, address: str | None) -> None:
    """Refuse (429 slow_down) an attempt that comes before its back-off has passed."""
    wait = max((_wait(conn, rule, key) for rule, key in _keys(subject, address)), default=0.0)
    if wait > 0:
        raise AuthError(
            "slow_down",
            "quá nhiều lần đăng nhập sai, hãy thử lại sau ít phút / too many failed attempts: "
            "wait before trying again",
            429,
            int(wait) + 1,
            reason=THROTTLED,
        )


def _address_throttled(conn: psycopg.Connection[Any], address: str | None) -> None:
    _throttled(conn, None, address)


def _fail(
    conn: psycopg.Connection[Any],
    account: Account | None,
    address: str | None,
    what: str,
    subject: str,
    reason: str = WRONG_CODE,
    attempts_left: int | None = None,
) -> AuthError:
    """Count a failure under its back-off keys, audit it; the error to raise (the same
    whether or not the account exists)."""
    keys = [key for _rule, key in _keys(subject, address)]
    if keys:  # older failures of these keys no longer count: drop them as new ones come
        conn.execute("DELETE FROM login_failure WHERE key = ANY(%s) AND at < now() - %s",
                     (keys, THROTTLE_WINDOW))  # fmt: skip
        conn.execute("INSERT INTO login_failure (key) SELECT unnest(%s::text[])", (keys,))
    if account is not None:
        conn.execute(
            "UPDATE account SET failed_logins = failed_logins + 1 WHERE id = %s", (account.id,)
        )
    actor = account.actor(()) if account else ANONYMOUS
    audit(conn, actor, "login", outcome="deny", basis="credentials",
          detail={"reason": what, "subject": subject[:64], "address": address})  # fmt: skip
    return AuthError("invalid_grant", "sai thông tin đăng nhập / invalid credentials",
                     reason=reason, attempts_left=attempts_left)  # fmt: skip


def _succeed(
    conn: psycopg.Connection[Any], account: Account, address: str | None, how: str
) -> None:
    conn.execute(
        "UPDATE account SET failed_logins = 0, locked_until = NULL, last_login_at = now() "
        "WHERE id = %s",
        (account.id,),
    )
    audit(conn, account.actor(()), "login", outcome="allow", basis=how,
          detail={"address": address})  # fmt: skip


def _disabled(conn: psycopg.Connection[Any], account_id: int) -> bool:
    """Disabled by an administrator (not merely waiting for activation)."""
    row = conn.execute("SELECT disabled_at FROM account WHERE id = %s", (account_id,)).fetchone()
    return bool(row and row[0] is not None)


def _usable(account: Account | None) -> bool:
    return account is not None and account.active


# --- token responses ----------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_tokens(
    conn: psycopg.Connection[Any],
    settings: Settings,
    account: Account,
    scopes: list[str],
    *,
    client: str | None = None,
    refresh: bool = True,
    ttl: int = ACCESS_TTL,
) -> dict[str, Any]:
    """The OAuth token response for an authenticated account."""
    actor = account.actor(scopes, client)
    body: dict[str, Any] = {
        "access_token": tokens.issue(settings, actor, ttl=ttl),
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": " ".join(scopes),
    }
    if account.person_id is not None and account.kind == "citizen":
        body["patient"] = str(account.person_id)
    if refresh:
        rt = secrets.token_urlsafe(32)
        conn.execute(
            """INSERT INTO refresh_token (token_hash, account_id, scopes, client, expires_at)
               VALUES (%s, %s, %s, %s, now() + %s)""",
            (_hash(rt), account.id, scopes, client, REFRESH_TTL),
        )
        body["refresh_token"] = rt
    return body


def password_grant(
    conn: psycopg.Connection[Any],
    settings: Settings,
    *,
    username: str,
    password: str,
    totp: str | None,
    scope: str | None,
    address: str | None,
    client: str | None = None,
) -> dict[str, Any]:
    _throttled(conn, username, address)
    account = accounts.find_account(conn, username)
    stored = None
    secret = None
    if account is not None:
        stored, secret = conn.execute(
            "SELECT password_hash, totp_secret FROM account WHERE id = %s", (account.id,)
        ).fetchone()  # type: ignore[misc]
    ok = accounts.check_password(stored, password)
    if not ok or not _usable(account) or account is None or account.kind == "citizen":
        raise _fail(conn, account, address, "password", username)
    if secret and not (totp and _totp_once(conn, account.id, secret, totp)):
        raise _fail(conn, account, address, "totp", username)
    scopes = negotiate_scopes(account.scopes, scope)
    _succeed(conn, account, address, "password+totp" if secret else "password")
    return issue_tokens(conn, settings, account, scopes, client=client_name(client))


def _totp_once(conn: psycopg.Connection[Any], account_id: int, secret: str, code: str) -> bool:
    """A valid TOTP code (±1 step of clock drift) not used before on this account."""
    otp = pyotp.TOTP(secret)
    now = time.time()
    step = None
    for drift in (0, -1, 1):
        if hmac.compare_digest(otp.at(now + drift * otp.interval), code.strip()):
            step = otp.timecode(datetime.fromtimestamp(now, UTC)) + drift
            break
    if step is None:
        return False
    row = conn.execute(
        """UPDATE account SET totp_last_step = %s
           WHERE id = %s AND (totp_last_step IS NULL OR totp_last_step < %s) RETURNING id""",
        (step, account_id, step),
    ).fetchone()
    return row is not None


def _code_hash(settings: Settings, account_id: int, code: str, key: str | None = None) -> str:
    secret = (key or settings.secret_key()).encode()
    return hmac.new(secret, f"{account_id}:{code}".encode(), hashlib.sha256).hexdigest()


def send_code(
    conn: psycopg.Connection[Any], settings: Settings, account: Account, purpose: str
) -> bool:
    """Send a one-time code to the account's phone (``accounts.code_phone``; at most
    OTP_PER_WINDOW per window)."""
    phone = accounts.code_phone(conn, account)
    if not phone:
        return False
    recent = conn.execute(
        "SELECT count(*) FROM otp_code WHERE account_id = %s AND purpose = %s "
        "AND created_at > now() - %s",
        (account.id, purpose, THROTTLE_WINDOW),
    ).fetchone()[0]  # type: ignore[index]
    if recent >= OTP_PER_WINDOW:
        return False
    code = f"{secrets.randbelow(1_000_000):06d}"
    conn.execute(
        """INSERT INTO otp_code (account_id, purpose, code_hash, destination, expires_at)
           VALUES (%s, %s, %s, %s, now() + %s)""",
        (account.id, purpose, _code_hash(settings, account.id, code), phone, OTP_TTL),
    )
    minutes = int(OTP_TTL.total_seconds() // 60)
    # Unaccented on purpose: SMS brand-name gateways send GSM-7 (160 characters); Vietnamese
    # diacritics would force UCS-2 (70 characters) and split the message.
    text = (
        f"HSSK: ma xac thuc cua ban la {code}, hieu luc {minutes} phut. "
        f"Khong chia se ma nay. / Your HSSK code is {code}."
    )
    notify.gateway().send(conn, "sms", phone, text)
    return True


MAX_CODE_REQUESTS = 10  # per client address within THROTTLE_WINDOW (SMS cost, harassment)
RESEND_AFTER = timedelta(seconds=60)  # a new code may be asked for this long after the last


@dataclass(frozen=True)
class LoginCode:
    """The latest login code of a citizen: where it went (masked), in how many seconds it
    expires and in how many a new one may be asked for (0: now)."""

    destination: str
    expires_in: int
    resend_in: int


def masked_phone(phone: str) -> str:
    """A phone number as a person may see it on a screen: '09•• ••• 345' (no-break spaces:
    the number is not split across lines)."""
    digits = "".join(c for c in phone if c.isdigit())
    if phone.strip().startswith("+84"):
        digits = "0" + digits[2:]
    if len(digits) < 8:
        return "•" * len(digits)
    return f"{digits[:2]}••\u00a0•••\u00a0{digits[-3:]}"


def login_code(conn: psycopg.Connection[Any], identifier: str) -> LoginCode | None:
    """The latest login code sent to the citizen behind ``identifier`` (None: none sent)."""
    account = accounts.find_citizen(conn, identifier)
    if account is None:
        return None
    row = conn.execute(
        """SELECT destination, ceil(greatest(extract(epoch FROM expires_at - now()), 0)),
                  ceil(greatest(extract(epoch FROM created_at + %s - now()), 0))
           FROM otp_code WHERE account_id = %s AND purpose = 'login' AND created_at > now() - %s
           ORDER BY id DESC LIMIT 1""",
        (RESEND_AFTER, account.id, THROTTLE_WINDOW),
    ).fetchone()
    return None if row is None else LoginCode(masked_phone(row[0]), int(row[1]), int(row[2]))


def _sms_limit(conn: psycopg.Connection[Any], where: str, params: tuple[Any, ...]) -> int:
    """Seconds until the oldest of the requests counted by ``where`` leaves the window."""
    row = conn.execute(
        f"SELECT extract(epoch FROM min(at) + %s - now()) FROM ({where}) AS recent(at)",
        (THROTTLE_WINDOW, *params),
    ).fetchone()
    return max(int(row[0] or 0), 0) + 1 if row else int(THROTTLE_WINDOW.total_seconds())


def _too_many_codes(retry_after: int) -> AuthError:
    return AuthError("slow_down", "quá nhiều yêu cầu mã / too many code requests; wait",
                     429, retry_after, reason=SMS_LIMIT)  # fmt: skip


def request_login_code(
    conn: psycopg.Connection[Any],
    settings: Settings,
    identifier: str,
    address: str | None,
    *,
    say_limit: bool = False,
) -> LoginCode | None:
    """Send a login code to the citizen behind a CCCD or phone (silently nothing if none).
    A request within RESEND_AFTER of the last code sends nothing more (a double click). The
    account's own SMS limit is said (SMS_LIMIT) only with ``say_limit``: the login page, which
    shows the masked phone anyway; the API answers alike whether or not an account exists."""
    _address_throttled(conn, address)
    if address:
        key = f"otp:{address}"
        n = conn.execute(
            "SELECT count(*) FROM login_failure WHERE key = %s AND at > now() - %s",
            (key, THROTTLE_WINDOW),
        ).fetchone()[0]  # type: ignore[index]
        if n >= MAX_CODE_REQUESTS:
            raise _too_many_codes(_sms_limit(
                conn, "SELECT at FROM login_failure WHERE key = %s AND at > now() - %s",
                (key, THROTTLE_WINDOW)))  # fmt: skip
        conn.execute("INSERT INTO login_failure (key) VALUES (%s)", (key,))
    account = accounts.find_citizen(conn, identifier) or accounts.provision_citizen(
        conn, identifier
    )
    if not _usable(account) or account is None:
        return None
    last = login_code(conn, identifier)
    if last is not None and last.resend_in > 0:
        return last
    if not send_code(conn, settings, account, "login"):
        if last is None or not say_limit:  # no phone to send to, or not to be told
            return last
        raise _too_many_codes(_sms_limit(
            conn, "SELECT created_at FROM otp_code WHERE account_id = %s AND purpose = 'login' "
            "AND created_at > now() - %s", (account.id, THROTTLE_WINDOW)))  # fmt: skip
    return login_code(conn, identifier)


def _consume_code(
    conn: psycopg.Connection[Any], settings: Settings, account: Account, purpose: str, code: str
) -> tuple[bool, str, int | None]:
    """Whether ``code`` is the latest code's; else why not and the attempts it has left."""
    row = conn.execute(
        """SELECT id, code_hash, expires_at > now(), attempts FROM otp_code
           WHERE account_id = %s AND purpose = %s AND used_at IS NULL
           ORDER BY id DESC LIMIT 1 FOR UPDATE""",
        (account.id, purpose),
    ).fetchone()
    if row is None:
        return False, WRONG_CODE, None
    if not row[2]:
        return False, EXPIRED_CODE, None
    if row[3] >= OTP_ATTEMPTS:
        return False, CODE_EXHAUSTED, 0
    good = any(  # a code sent just before a rotation still counts (retired secrets)
        hmac.compare_digest(row[1], _code_hash(settings, account.id, code.strip(), key))
        for key in settings.secret_keys()
    )
    conn.execute(
        "UPDATE otp_code SET attempts = attempts + 1, used_at = CASE WHEN %s THEN now() END "
        "WHERE id = %s",
        (good, row[0]),
    )
    left = OTP_ATTEMPTS - row[3] - 1
    return good, WRONG_CODE if left > 0 else CODE_EXHAUSTED, left


def otp_grant(
    conn: psycopg.Connection[Any],
    settings: Settings,
    *,
    identifier: str,
    code: str,
    scope: str | None,
    address: str | None,
    client: str | None = None,
) -> dict[str, Any]:
    _throttled(conn, identifier, address)
    account = accounts.find_citizen(conn, identifier)
    if account is None or not _usable(account):
        raise _fail(conn, account, address, "otp", identifier)
    good, reason, left = _consume_code(conn, settings, account, "login", code)
    if not good:
        raise _fail(conn, account, address, "otp", identifier, reason, left)
    scopes = negotiate_scopes(account.scopes, scope)
    _succeed(conn, account, address, "otp")
    return issue_tokens(conn, settings, account, scopes, client=client_name(client))


def activate(
    conn: psycopg.Connection[Any],
    settings: Settings,
    *,
    username: str,
    code: str,
    new_password: str | None,
    address: str | None,
) -> Account:
    """Complete an activation / password reset with the code sent to the account's phone."""
    _throttled(conn, username, address)
    account = accounts.find_account(conn, username)
    if (
        account is None
        or _disabled(conn, account.id)
        or not _consume_code(conn, settings, account, "activate", code)[0]
    ):
        raise _fail(conn, account, address, "activation", username)
    if account.kind != "citizen":
        if not new_password:
            raise AuthError("invalid_request", "new_password is required for staff accounts")
        accounts.set_password(conn, account.id, new_password)
    accounts.set_active(conn, account.id, True)
    audit(conn, account.actor(()), "activate", outcome="allow", basis="otp")
    got = accounts.get_account(conn, account.id)
    assert got is not None
    return got


def refresh_grant(
    conn: psycopg.Connection[Any],
    settings: Settings,
    *,
    refresh_token: str,
    scope: str | None,
    address: str | None,
) -> dict[str, Any]:
    row = conn.execute(
        """SELECT account_id, scopes, client, revoked_at IS NOT NULL, expires_at <= now()
           FROM refresh_token WHERE token_hash = %s FOR UPDATE""",
        (_hash(refresh_token),),
    ).fetchone()
    if row is None:
        raise _fail(conn, None, address, "refresh-unknown", "refresh")
    account_id, scopes, client, revoked, expired = row
    account = accounts.get_account(conn, account_id)
    if revoked:  # reuse of a rotated token: someone copied it — revoke them all
        accounts.revoke_refresh_tokens(conn, account_id)
        raise _fail(conn, account, address, "refresh-reuse", "refresh")
    if expired or account is None or not account.active:
        raise _fail(conn, account, address, "refresh-expired", "refresh")
    wanted = negotiate_scopes(scopes, scope)
    body = issue_tokens(conn, settings, account, wanted, client=client)
    conn.execute(
        "UPDATE refresh_token SET revoked_at = now(), replaced_by = %s WHERE token_hash = %s",
        (_hash(body["refresh_token"]), _hash(refresh_token)),
    )
    return body


def revoke(conn: psycopg.Connection[Any], token: str) -> None:
    """RFC 7009: revoke a refresh token (unknown tokens are silently ignored)."""
    conn.execute(
        "UPDATE refresh_token SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL",
        (_hash(token),),
    )


def client_credentials_grant(
    conn: psycopg.Connection[Any],
    settings: Settings,
    *,
    assertion_type: str | None,
    assertion: str | None,
    scope: str | None,
    audiences: list[str],
    address: str | None,
) -> dict[str, Any]:
    """SMART Backend Services: a signed JWT assertion from a system client."""
    _address_throttled(conn, address)
    if assertion_type != ASSERTION_TYPE or not assertion:
        raise AuthError("invalid_client", f"client_assertion_type must be {ASSERTION_TYPE}", 401)
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthError("invalid_client", f"malformed client assertion: {exc}", 401) from exc
    client_id = str(claims.get("iss") or "")
    account = accounts.find_account(conn, client_id)

    def refuse(why: str) -> AuthError:
        _fail(conn, account, address, f"assertion: {why}", client_id)
        return AuthError("invalid_client", f"client assertion refused: {why}", 401)

    if account is None or account.kind != "system" or not account.active or not account.unit_id:
        raise refuse("unknown or disabled system client")
    if claims.get("sub") != client_id:
        raise refuse("iss and sub must both be the client id")
    alg = header.get("alg")
    if alg not in signing.ALGORITHMS:
        raise refuse(f"alg {alg!r} not accepted ({', '.join(signing.ALGORITHMS)})")
    verified = _verified_assertion(conn, account.unit_id, assertion, header, audiences, refuse)
    if int(verified["exp"]) - int(time.time()) > MAX_ASSERTION_LIFE:
        raise refuse(f"assertion lives longer than {MAX_ASSERTION_LIFE} s")
    if not _first_use(conn, client_id, verified):
        raise refuse("assertion already used (jti replay)")
    scopes = negotiate_scopes(account.scopes, scope)
    _succeed(conn, account, address, "client-assertion")
    return issue_tokens(
        conn, settings, account, scopes, client=client_id, refresh=False, ttl=SYSTEM_TTL
    )


def _verified_assertion(
    conn: psycopg.Connection[Any],
    unit_id: str,
    assertion: str,
    header: dict[str, Any],
    audiences: list[str],
    refuse: Callable[[str], AuthError],
) -> dict[str, Any]:
    """The assertion's claims, checked against the unit's active keys of its ``alg`` (and
    ``kid``, when it names one)."""
    keys = [k for k in signing.unit_keys(conn, unit_id) if k[1] == header.get("alg")]
    if header.get("kid"):
        keys = [k for k in keys if k[0] == header["kid"]]
    for _kid, k_alg, key in keys:
        try:
            return jwt.decode(
                assertion,
                key,
                algorithms=[k_alg],
                audience=audiences,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
        except jwt.InvalidAudienceError as exc:
            raise refuse("wrong audience (aud must be the token URL)") from exc
        except jwt.ExpiredSignatureError as exc:
            raise refuse("assertion expired") from exc
        except jwt.PyJWTError:
            continue
    raise refuse("signature does not match any active key of the unit")


def _first_use(conn: psycopg.Connection[Any], client_id: str, claims: dict[str, Any]) -> bool:
    """Record the assertion's ``jti``; False if it was used before (a replay)."""
    conn.execute("DELETE FROM client_assertion WHERE expires_at < now() - interval '1 hour'")
    used = conn.execute(
        """INSERT INTO client_assertion (issuer, jti, expires_at)
           VALUES (%s, %s, to_timestamp(%s)) ON CONFLICT DO NOTHING""",
        (client_id, str(claims["jti"]), int(claims["exp"])),
    )
    return used.rowcount != 0


@dataclass(frozen=True)
class OperatorToken:
    token: str
    actor: Actor


def operator_token(
    conn: psycopg.Connection[Any],
    settings: Settings,
    username: str,
    scope: str | None,
    ttl: int = 3600,
) -> OperatorToken:
    """An access token for an account, issued by an operator on the server (CLI)."""
    account = accounts.find_account(conn, username)
    if account is None:
        raise AuthError("invalid_request", f"no account {username!r}")
    if not account.active:
        raise AuthError("invalid_request", f"account {username!r} is disabled or not activated")
    scopes = negotiate_scopes(account.scopes, scope)
    actor = account.actor(scopes, "hssk-cli")
    audit(conn, actor, "token-issued", outcome="allow", basis="operator",
          detail={"scopes": scopes, "ttl": ttl})  # fmt: skip
    return OperatorToken(tokens.issue(settings, actor, ttl=ttl), actor)
