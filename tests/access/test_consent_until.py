"""A consent 'until 31/12' holds through that Vietnam day, whatever the server's UTC date; the
pages and the API grant it through one function (access.consent)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from access_world import World
from fastapi.testclient import TestClient

from hssk.access import consent
from hssk.kernel import clock


def test_consent_until_ends_with_the_vietnam_day(client: TestClient, world: World) -> None:
    # 00:30 on 7 December in Hà Nội is still 6 December in UTC
    with clock.frozen(datetime(2026, 12, 6, 17, 30, tzinfo=UTC)):
        assert clock.today() == date(2026, 12, 7)
        body = {"grantee_unit": "BV-02", "until": "2026-12-31"}
        resp = client.post("/api/v1/me/consents", json=body, headers=world.headers("citizen"))
    assert resp.status_code == 201, resp.text
    end = datetime.fromisoformat(resp.json()["end"])
    assert clock.to_vn(end) == datetime(2027, 1, 1, 0, 0, tzinfo=clock.VN)
    # shown to the citizen as the day they chose
    assert clock.to_vn(end - (end - end.replace(microsecond=0))).date() == date(2027, 1, 1)
    assert consent.end_of_day(date(2026, 12, 31)).astimezone(UTC) == datetime(
        2026, 12, 31, 17, 0, tzinfo=UTC
    )


def test_consent_in_the_past_is_refused(client: TestClient, world: World) -> None:
    body = {"grantee_unit": "BV-02", "until": "2020-01-01"}
    resp = client.post("/api/v1/me/consents", json=body, headers=world.headers("citizen"))
    assert resp.status_code == 400 and "after today" in resp.text


def test_someone_elses_consent_looks_missing(client: TestClient, world: World) -> None:
    mine = client.post("/api/v1/me/consents", json={"grantee_unit": "BV-02"},
                       headers=world.headers("citizen"))  # fmt: skip
    assert mine.status_code == 201
    other = client.delete(f"/api/v1/me/consents/{mine.json()['id']}",
                          headers=world.headers("other_citizen"))  # fmt: skip
    assert other.status_code == 404
