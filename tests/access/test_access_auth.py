"""Authentication: the token endpoint's grants, lockout, scopes, and refused tokens."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pyotp
import pytest
from access_world import PASSWORD, World
from fastapi.testclient import TestClient

from hssk.access import accounts, auth, signing, tokens
from hssk.kernel.config import load_settings

TOKEN_URL = "http://testserver/auth/token"


def _audit_count(world: World, action: str, outcome: str) -> int:
    with world.db.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_event WHERE action = %s AND outcome = %s", (action, outcome)
        ).fetchone()
    return int(row[0]) if row else 0


def _password(client: TestClient, username: str, password: str, **extra: str) -> Any:
    data = {"grant_type": "password", "username": username, "password": password, **extra}
    return client.post("/auth/token", data=data)


def test_password_grant_gives_a_working_token(client: TestClient, world: World) -> None:
    resp = _password(client, "bs.hung", PASSWORD)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] <= 900
    assert resp.headers["cache-control"] == "no-store"
    rtype, rid = world.resources["obs_parent"]
    read = client.get(
        f"/fhir/{rtype}/{rid}", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert read.status_code == 200  # the doctor has an open encounter with this patient
    via_his = _password(client, "bs.hung", PASSWORD, client_id="his-bv01")
    assert tokens.verify(load_settings(), via_his.json()["access_token"]).client == "his-bv01"
    client.get(f"/fhir/{rtype}/{rid}",
               headers={"Authorization": f"Bearer {via_his.json()['access_token']}"})  # fmt: skip
    with world.db.connection() as conn:
        last = conn.execute("SELECT client, basis FROM audit_event WHERE action = 'read' "
                            "ORDER BY seq DESC LIMIT 1").fetchone()  # fmt: skip
    assert last == ("his-bv01", "encounter")


def test_scope_escalation_is_refused(client: TestClient, world: World) -> None:
    resp = _password(client, "bs.hung", PASSWORD, scope="system/*.read")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"
    narrowed = _password(client, "bs.hung", PASSWORD, scope="user/Immunization.read")
    assert narrowed.status_code == 200
    token = narrowed.json()["access_token"]
    rtype, rid = world.resources["obs_parent"]  # an Observation: outside the narrowed scope
    resp = client.get(f"/fhir/{rtype}/{rid}", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403


def test_repeated_failures_slow_down_without_locking_or_revealing_names(
    client: TestClient, world: World
) -> None:
    with world.db.connection() as conn:
        accounts.create_account(conn, "nan.nhan", "staff", unit_id="TYT-A", password=PASSWORD)
    before = _audit_count(world, "login", "deny")
    answers = {}
    for name in ("nan.nhan", "khong.ton.tai"):  # an account, and a name no account has
        codes = [_password(client, name, "wrong-password-123") for _ in range(auth.PAIR.free)]
        assert [(r.status_code, r.json()["error"]) for r in codes] == [
            (400, "invalid_grant")
        ] * auth.PAIR.free
        slowed = _password(client, name, PASSWORD)  # the guesser must now wait, even if right
        assert slowed.status_code == 429 and int(slowed.headers["retry-after"]) > 0
        answers[name] = (slowed.json()["error"], slowed.json()["error_description"])
    assert answers["nan.nhan"] == answers["khong.ton.tai"]  # no account enumeration
    assert _audit_count(world, "login", "deny") == before + 2 * auth.PAIR.free
    # the owner, from their own address, is not locked out by the guesser
    from hssk.app import create_app

    with TestClient(create_app(load_settings(), world.db), client=("198.51.100.8", 1)) as own:
        assert _password(own, "nan.nhan", PASSWORD).status_code == 200


def test_totp_is_required_once_enrolled(client: TestClient, world: World) -> None:
    with world.db.connection() as conn:
        acc = accounts.create_account(conn, "bs.totp", "clinician", unit_id="BV-01",
                                      roles=["clinician"], password=PASSWORD)  # fmt: skip
    world.accounts["bs.totp"] = acc
    enrol = client.post("/api/v1/me/totp", headers=world.headers("bs.totp"))
    assert enrol.status_code == 201, enrol.text
    secret = pyotp.parse_uri(enrol.json()["otpauth_uri"]).secret
    assert client.post("/api/v1/me/totp", headers=world.headers("bs.totp")).status_code == 409
    assert client.post("/api/v1/me/totp", headers=world.headers("citizen")).status_code == 403
    assert _password(client, "bs.totp", PASSWORD).status_code == 400
    assert _password(client, "bs.totp", PASSWORD, totp="000000").status_code == 400
    code = pyotp.TOTP(secret).now()
    ok = _password(client, "bs.totp", PASSWORD, totp=code)
    assert ok.status_code == 200, ok.text
    replay = _password(client, "bs.totp", PASSWORD, totp=code)  # the same code again
    assert replay.status_code == 400


def test_citizen_logs_in_with_cccd_and_a_code(client: TestClient, world: World) -> None:
    assert client.post("/auth/otp", json={"identifier": "001185000001"}).status_code == 202
    # unknown identifiers get the same answer
    assert client.post("/auth/otp", json={"identifier": "001199999999"}).status_code == 202
    with world.db.connection() as conn:
        (message,) = conn.execute(
            "SELECT body FROM notification WHERE destination = '0912000001' ORDER BY id DESC"
        ).fetchone() or ("",)
    code = next(w.rstrip(",") for w in message.split() if w.rstrip(",").isdigit())
    wrong = client.post("/auth/token", data={"grant_type": auth.GRANT_OTP,
                                             "identifier": "001185000001", "code": "999999x"})  # fmt: skip
    assert wrong.status_code == 400
    resp = client.post("/auth/token", data={"grant_type": auth.GRANT_OTP,
                                            "identifier": "001185000001", "code": code})  # fmt: skip
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["patient"] == str(world.persons["parent"])
    assert "patient/*.read" in body["scope"].split()
    again = client.post("/auth/token", data={"grant_type": auth.GRANT_OTP,
                                             "identifier": "001185000001", "code": code})  # fmt: skip
    assert again.status_code == 400  # a code works once
    # refresh: rotation, and reuse of a rotated token revokes the family
    r1 = client.post("/auth/token", data={"grant_type": "refresh_token",
                                          "refresh_token": body["refresh_token"]})  # fmt: skip
    assert r1.status_code == 200
    reuse = client.post("/auth/token", data={"grant_type": "refresh_token",
                                             "refresh_token": body["refresh_token"]})  # fmt: skip
    assert reuse.status_code == 400
    r2 = client.post("/auth/token", data={"grant_type": "refresh_token",
                                          "refresh_token": r1.json()["refresh_token"]})  # fmt: skip
    assert r2.status_code == 400  # the whole family was revoked


@pytest.fixture(scope="module")
def his_key(world: World) -> dict[str, Any]:
    private_pem, public_pem = signing.generate_keypair("ES256")
    with world.db.connection() as conn:
        entry = signing.register_key(conn, "BV-01", public_pem)
    return {"key": private_pem, "kid": entry["kid"]}


def _assertion(key: bytes, kid: str | None, **over: Any) -> str:
    now = int(time.time())
    claims = {"iss": "bv01-his", "sub": "bv01-his", "aud": TOKEN_URL, "exp": now + 120,
              "iat": now, "jti": uuid.uuid4().hex, **over}  # fmt: skip
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


def _client_credentials(client: TestClient, assertion: str, scope: str | None = None) -> Any:
    data = {"grant_type": "client_credentials", "client_assertion_type": auth.ASSERTION_TYPE,
            "client_assertion": assertion}  # fmt: skip
    if scope:
        data["scope"] = scope
    return client.post("/auth/token", data=data)


def test_backend_services_assertion(
    client: TestClient, world: World, his_key: dict[str, Any]
) -> None:
    good = _assertion(his_key["key"], his_key["kid"])
    resp = _client_credentials(client, good, "system/Observation.read")
    assert resp.status_code == 200, resp.text
    assert "refresh_token" not in resp.json()
    token = resp.json()["access_token"]
    rtype, rid = world.resources["obs_parent"]  # patient with an encounter at BV-01
    assert (
        client.get(f"/fhir/{rtype}/{rid}", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    other_type, other_id = world.resources["obs_other"]
    assert client.get(f"/fhir/{other_type}/{other_id}",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 403  # fmt: skip
    # the same assertion again: replay
    replay = _client_credentials(client, good)
    assert replay.status_code == 401 and "replay" in replay.json()["error_description"]


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("wrong_audience", "audience"),
        ("expired", "expired"),
        ("too_long", "longer"),
        ("other_key", "signature"),
        ("alg_none", "alg"),
        ("hs256_with_public_key", "alg"),
        ("not_a_client", "unknown"),
        ("scope_escalation", "not granted"),
    ],
)
def test_bad_assertions_are_refused(
    client: TestClient, world: World, his_key: dict[str, Any], case: str, expect: str
) -> None:
    now = int(time.time())
    scope = None
    if case == "wrong_audience":
        a = _assertion(his_key["key"], his_key["kid"], aud="https://other.example/token")
    elif case == "expired":
        a = _assertion(his_key["key"], his_key["kid"], exp=now - 30, iat=now - 200)
    elif case == "too_long":
        a = _assertion(his_key["key"], his_key["kid"], exp=now + 3600)
    elif case == "other_key":
        other, _ = signing.generate_keypair("ES256")
        a = _assertion(other, None)
    elif case == "alg_none":
        a = jwt.encode({"iss": "bv01-his", "sub": "bv01-his", "aud": TOKEN_URL, "exp": now + 60,
                        "jti": uuid.uuid4().hex}, None, algorithm="none")  # fmt: skip
    elif case == "hs256_with_public_key":
        a = jwt.encode({"iss": "bv01-his", "sub": "bv01-his", "aud": TOKEN_URL, "exp": now + 60,
                        "jti": uuid.uuid4().hex}, "secret-guess-0123456789-abcdefghijkl",
                       algorithm="HS256")  # fmt: skip
    elif case == "not_a_client":
        a = _assertion(his_key["key"], his_key["kid"], iss="bs.hung", sub="bs.hung")
    else:
        a, scope = _assertion(his_key["key"], his_key["kid"]), "user/*.read"
    resp = _client_credentials(client, a, scope)
    assert resp.status_code in (400, 401), resp.text
    assert expect in resp.json()["error_description"]


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": tokens.ISSUER, "aud": tokens.AUDIENCE, "sub": "1", "kind": "citizen",
            "scope": "patient/*.read", "person": 1, "iat": now, "exp": now + 60, **over}  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda s: jwt.encode(_claims(exp=int(time.time()) - 5), s, "HS256"), id="expired"),
        pytest.param(lambda s: jwt.encode(_claims(), "forged-secret-0123456789abcdef-0123456789", "HS256"), id="forged"),
        pytest.param(lambda s: jwt.encode(_claims(), None, algorithm="none"), id="unsigned"),
        pytest.param(lambda s: jwt.encode(_claims(aud="other-api"), s, "HS256"), id="audience"),
        pytest.param(lambda s: jwt.encode(_claims(iss="evil"), s, "HS256"), id="issuer"),
        pytest.param(lambda s: "not.a.token", id="garbage"),
    ],
)  # fmt: skip
def test_refused_tokens_get_401_and_are_audited(client: TestClient, world: World, bad: Any) -> None:
    token = bad(load_settings().secret_key())
    before = _audit_count(world, "authenticate", "deny")
    rtype, rid = world.resources["obs_parent"]
    resp = client.get(f"/fhir/{rtype}/{rid}", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.headers.get("www-authenticate", "").startswith("Bearer")
    assert _audit_count(world, "authenticate", "deny") == before + 1


def test_negotiate_scopes_never_widens() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    parts = st.tuples(
        st.sampled_from(["patient", "user", "system", "x"]),
        st.sampled_from(["*", "Observation", "Immunization", "Patient", "bad type"]),
        st.sampled_from(["read", "write", "*", "delete", "rs", "r", "cud", "cruds", "s", ""]),
    ).map(lambda t: f"{t[0]}/{t[1]}.{t[2]}")

    @given(st.lists(parts, max_size=4), st.lists(parts, min_size=1, max_size=4))
    def prop(allowed: list[str], requested: list[str]) -> None:
        try:
            got = auth.negotiate_scopes(allowed, " ".join(requested))
        except auth.AuthError:
            return
        for scope in got:
            assert any(auth._covers(a, scope) for a in allowed)

    prop()


def test_failed_logins_from_one_address_are_throttled(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hssk.app import create_app

    # each failure costs an argon2 hash: a smaller allowance for the test
    monkeypatch.setattr(auth, "ADDRESS", auth.Backoff("addr", 6, auth.ADDRESS.cap))
    monkeypatch.setattr(auth, "MAX_ADDRESS_FAILURES", 6)

    app = create_app(load_settings(), world.db)
    with TestClient(app, client=("203.0.113.9", 50000)) as attacker:
        codes = [
            _password(attacker, f"doan.{i}", "sai-mat-khau-123").status_code
            for i in range(auth.MAX_ADDRESS_FAILURES + 1)
        ]
        assert codes[:-1] == [400] * auth.MAX_ADDRESS_FAILURES
        assert codes[-1] == 429
        # even a correct password from that address waits
        assert _password(attacker, "bs.hung", PASSWORD).status_code == 429
    with TestClient(app, client=("198.51.100.7", 50000)) as someone_else:
        assert _password(someone_else, "bs.hung", PASSWORD).status_code == 200


def test_code_requests_from_one_address_are_limited(world: World) -> None:
    from hssk.app import create_app

    app = create_app(load_settings(), world.db)
    with TestClient(app, client=("203.0.113.77", 50000)) as spammer:
        codes = [
            spammer.post("/auth/otp", json={"identifier": f"09120{i:05d}"}).status_code
            for i in range(auth.MAX_CODE_REQUESTS + 1)
        ]
    assert codes[:-1] == [202] * auth.MAX_CODE_REQUESTS and codes[-1] == 429


def test_first_login_provisions_the_citizen_account(client: TestClient, world: World) -> None:
    from datetime import date

    with world.db.connection() as conn:
        pid = conn.execute(
            "INSERT INTO person (full_name, birth_date, cccd, phone, phone_verified, "
            "commune_code) VALUES ('Phạm Thu Hà', %s, '001190000099', '0987000099', true, "
            "'00001') RETURNING id",
            (date(1990, 2, 2),),
        ).fetchone()[0]  # type: ignore[index]
    assert client.post("/auth/otp", json={"identifier": "001190000099"}).status_code == 202
    with world.db.connection() as conn:
        acc = conn.execute(
            "SELECT kind, person_id, phone FROM account WHERE person_id = %s", (pid,)
        ).fetchone()
        (msg,) = conn.execute(
            "SELECT body FROM notification WHERE destination = '0987000099'"
        ).fetchone()  # type: ignore[misc]
    assert acc == ("citizen", pid, None)  # the code goes to the person's verified phone
    code = next(w.rstrip(",") for w in msg.split() if w.rstrip(",").isdigit())
    resp = client.post("/auth/token", data={"grant_type": auth.GRANT_OTP,
                                            "identifier": "001190000099", "code": code})  # fmt: skip
    assert resp.status_code == 200 and resp.json()["patient"] == str(pid)
    # no phone in the register, or an unknown CCCD: nothing is created, same answer
    for ident in ("001200000003", "001299999999"):
        assert client.post("/auth/otp", json={"identifier": ident}).status_code == 202
    with world.db.connection() as conn:
        n = conn.execute("SELECT count(*) FROM account WHERE username LIKE 'cd.%%'").fetchone()
    assert n == (1,)


def test_smart_v2_scopes() -> None:
    from hssk.access.actor import Actor

    a = Actor(account_id="1", kind="citizen", scopes=frozenset({"patient/Observation.rs"}))
    assert a.has_scope("patient", "Observation", "read")
    assert not a.has_scope("patient", "Observation", "write")
    b = Actor(account_id="2", kind="staff", scopes=frozenset({"user/*.cud"}))
    assert b.has_scope("user", "Immunization", "write") and not b.has_scope("user", "X", "read")
    assert auth.negotiate_scopes(["user/*.read"], "user/Observation.rs") == ["user/Observation.rs"]
    with pytest.raises(auth.AuthError):
        auth.negotiate_scopes(["user/*.read"], "user/Observation.cruds")
    with pytest.raises(auth.AuthError, match="malformed"):
        auth.negotiate_scopes(["user/*.read"], "user/Observation.")


def test_verified_tokens_are_reused_but_never_past_expiry_or_under_another_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hssk.access import Actor

    settings = load_settings()
    actor = Actor("tok-cache", "system", scopes=frozenset({"system/*.read"}), client="c")
    token = tokens.issue(settings, actor, ttl=1)
    assert tokens.verify(settings, token) == actor
    assert tokens.verify(settings, token) == actor  # from the per-process cache
    with monkeypatch.context() as m:
        m.setenv("HSSK_SECRET_KEY", "another installation secret, 32 bytes or more")
        with pytest.raises(tokens.TokenError):
            tokens.verify(settings, token)  # signed with the other secret: checked again
    while time.time() < int(jwt.decode(token, options={"verify_signature": False})["exp"]):
        time.sleep(0.1)
    with pytest.raises(tokens.TokenError):
        tokens.verify(settings, token)  # expired: the cached entry is not honoured


def test_account_status_is_asked_outside_the_request_pool(world: World) -> None:
    # every pooled connection held by requests (as under load): the status check still answers
    # instead of waiting for the pool's timeout
    with world.db.connection() as conn:
        acc = accounts.create_account(conn, "bs.pool", "clinician", unit_id="BV-01",
                                      roles=["clinician"])  # fmt: skip
    held = [world.db.pool.getconn() for _ in range(world.db.pool.max_size)]
    try:
        assert accounts.account_disabled(world.db, str(acc.id)) is False
    finally:
        for conn in held:
            world.db.pool.putconn(conn)
