"""A deceased person's book says so in words, and shows no vaccination schedule."""

from __future__ import annotations

from datetime import date

import httpx

from hssk.access import PLATFORM
from hssk.access import accounts as acc
from hssk.access.tokens import issue
from hssk.ingest.person_updates import record_deaths
from hssk.kernel.config import load_settings
from hssk.registry import Death, SourceRecord, link


def test_book_page_of_a_deceased_child(server) -> None:  # type: ignore[no-untyped-def]
    with server.db.connection() as conn:
        child = link(conn, SourceRecord("web-death", "c1", "Đỗ Minh Khôi", "2025-06-01", "M",
                                        cccd="001225000199")).person_id  # fmt: skip
        account = acc.find_account(conn, "citizen.web-death") or acc.create_account(
            conn, "citizen.web-death", "citizen", person_id=child
        )
    headers = {"Authorization": f"Bearer {issue(load_settings(), account.actor())}"}
    before = httpx.get(f"{server.url}/book", headers=headers, follow_redirects=True)
    assert before.status_code == 200 and 'id="schedule"' in before.text
    assert "Đã mất ngày" not in before.text
    with server.db.connection() as conn:
        death = Death(child, date(2026, 11, 1), "population", "web-death-1")
        assert record_deaths(conn, PLATFORM, [death], basis="test").applied
    after = httpx.get(f"{server.url}/book", headers=headers, follow_redirects=True)
    assert "Đã mất ngày 01/11/2026" in after.text
    assert 'id="schedule"' not in after.text
