from fastapi.testclient import TestClient


def test_home_page_in_vietnamese_then_english(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and '<html lang="vi">' in r.text
    assert "Sổ sức khỏe điện tử" in r.text and "/book/login" in r.text
    en = client.get("/?lang=en")
    assert '<html lang="en">' in en.text and "health book" in en.text


def test_sms_inbox_exists_only_in_demo_mode(client: TestClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("HSSK_DEMO", raising=False)
    assert client.get("/dev/sms").status_code == 404
    assert "/dev/sms" not in client.get("/").text
    monkeypatch.setenv("HSSK_DEMO", "1")
    r = client.get("/dev/sms")
    assert r.status_code == 200 and "Chưa có tin nhắn" in r.text
