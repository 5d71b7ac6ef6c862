"""The API explorer works without internet: Swagger UI is served from the platform's assets."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_docs_load_their_assets_from_the_platform(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn.jsdelivr.net" not in page.text and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        got = client.get(f"/docs/assets/{asset}")
        assert got.status_code == 200 and len(got.content) > 10_000
