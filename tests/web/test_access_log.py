"""The citizen's access log in words: who, which unit, why, what, when (Vietnam time); the
citizen's own reads folded per day; writes as writes; an emergency explained."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from hssk.access import consent
from hssk.access.audit import AuditRow
from hssk.access.policy import authorize
from hssk.app import create_app
from hssk.db import Database
from hssk.kernel.config import load_settings
from hssk.web.access_log import lines
from hssk.web.demo import seed_family

ME = "41"


def row(seq: int, at: str, actor: str, action: str, **kw: Any) -> AuditRow:
    fields: dict[str, Any] = {
        "actor_name": None, "unit_id": None, "unit_name": None, "role": None,
        "basis": None, "purpose": None, "resource_type": "Patient", "resource_id": None,
        "person_id": 7, "outcome": "allow", "client": None, "detail": {},
    }  # fmt: skip
    fields.update(kw)
    return AuditRow(seq=seq, at=datetime.fromisoformat(at), actor=actor, action=action, **fields)


def test_own_reads_fold_per_vietnam_day() -> None:
    # 17:30 UTC on 31/12 is already 00:30 on 01/01 in Vietnam: a day of its own
    rows = [
        row(5, "2026-12-31T17:30:00+00:00", ME, "read", basis="own-record"),
        row(4, "2026-12-31T09:00:00+00:00", ME, "read", basis="own-record"),
        row(3, "2026-12-31T08:00:00+00:00", ME, "export", basis="own-record"),
        row(2, "2026-12-31T02:00:00+00:00", ME, "read", basis="own-record"),
        row(1, "2026-12-31T01:00:00+00:00", ME, "consent-grant", basis="own-record"),
    ]
    out = lines(rows, ME, "vi")
    assert [(line.at.strftime("%d/%m %H:%M"), line.what) for line in out] == [
        ("01/01 00:30", "Bạn đã xem sổ của mình"),
        ("31/12 16:00", "Bạn đã xem sổ của mình 2 lần"),
        ("31/12 15:00", "Tải về (PDF)"),
        ("31/12 08:00", "Cho phép xem hồ sơ"),
    ]
    assert out[1].folded == 2 and out[2].who == "Bạn"
    assert lines(rows, ME, "en")[1].what == "You looked at your book 2 times"


def test_who_why_and_what_in_words() -> None:
    rows = [
        row(3, "2026-12-06T03:00:00+00:00", "9", "create", actor_name="BS. Phạm Thị Lan",
            role="clinician", unit_name="Bệnh viện Đa khoa Hà Đông", basis="break-glass",
            resource_type="ServiceRequest"),
        row(2, "2026-12-06T02:59:00+00:00", "9", "break-glass", actor_name="BS. Phạm Thị Lan",
            role="clinician", unit_name="Bệnh viện Đa khoa Hà Đông", basis="break-glass",
            detail={"reason": "Bệnh nhân hôn mê, cần tiền sử dùng thuốc"}),
        row(1, "2026-12-06T01:00:00+00:00", "8", "read", actor_name="CB. Đỗ Văn Hùng",
            role="station", unit_name="Trạm Y tế phường Hà Đông", basis="deny", outcome="deny"),
    ]  # fmt: skip
    referral, declared, refused = lines(rows, ME, "vi")
    assert referral.what == "Ghi mới vào hồ sơ: giấy chuyển tuyến" and referral.write
    assert not referral.refused and referral.emergency
    assert referral.why == "Khẩn cấp (cấp cứu)"
    assert (referral.who, referral.role, referral.unit) == (
        "BS. Phạm Thị Lan", "bác sĩ, nhân viên y tế", "Bệnh viện Đa khoa Hà Đông")  # fmt: skip
    assert referral.at.strftime("%H:%M") == "10:00"  # Vietnam time
    assert declared.what == "Khai báo truy cập khẩn cấp"
    assert declared.reason == "Bệnh nhân hôn mê, cần tiền sử dùng thuốc"
    assert refused.refused and refused.why == "Không có căn cứ"
    assert refused.role == "cán bộ trạm y tế"
    english = lines(rows, ME, "en")[0]
    assert english.what == "Wrote to the record: referral letter" and english.why == "Emergency"
    unknown = lines([row(1, "2026-12-06T01:00:00+00:00", "x", "frobnicate")], ME, "vi")[0]
    assert unknown.what == "Thao tác khác (frobnicate)"


def test_emergency_letters_are_writes_the_policy_allows(db: Database) -> None:
    """Under a declared emergency a clinician may write the referral and appointment letters
    (so the log shows them as writes), never other parts of the record."""
    with db.connection() as conn:
        fam = seed_family(conn, tag="alog")
        from hssk.access import accounts

        doctor = accounts.find_account(conn, fam.clinician)
        assert doctor is not None
        actor = doctor.actor()
        assert not authorize(conn, actor, "create", "ServiceRequest", fam.outsider).allowed
        consent.declare_emergency(conn, actor, fam.outsider, "Bệnh nhân hôn mê nhập viện cấp cứu")
        for rtype in ("ServiceRequest", "Appointment"):
            decision = authorize(conn, actor, "create", rtype, fam.outsider)
            assert decision.allowed and decision.basis == "break-glass", rtype
        assert not authorize(conn, actor, "create", "Observation", fam.outsider).allowed
        assert not authorize(conn, actor, "update", "Condition", fam.outsider).allowed


def test_page_shows_words_and_children(db: Database) -> None:
    with db.connection() as conn:
        fam = seed_family(conn, tag="alog")
    app = create_app(load_settings(), db=db)
    with TestClient(app) as client:
        assert client.get("/book/access-log", follow_redirects=False).status_code == 303
        from hssk.access import accounts
        from hssk.access.tokens import issue

        with db.connection() as conn:
            acc = accounts.find_account(conn, f"citizen.{fam.mother}")
        assert acc is not None
        client.cookies.set("hssk_token", issue(load_settings(), acc.actor(), ttl=600))
        client.get("/book")
        page = client.get("/book/access-log")
        assert page.status_code == 200 and 'id="log"' in page.text
        assert "own-record" not in page.text and ">read<" not in page.text
        child = client.get(f"/book/access-log?p={fam.child}")
        assert child.status_code == 200 and "Trần Minh An" in child.text
        stranger = client.get(f"/book/access-log?p={fam.outsider}")
        assert stranger.status_code == 403
        english = client.get("/book/access-log?lang=en")
        assert "Who read my record" in english.text
