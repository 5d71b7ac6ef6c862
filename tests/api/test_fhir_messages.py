"""The FHIR API's error texts: Vietnamese by default, English when Accept-Language prefers it,
and the message id in ``details.coding`` whatever the language."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hssk.access.actor import Actor
from hssk.api import errors
from hssk.api.messages import MESSAGES, SYSTEM, lang_of, msg, placeholders
from hssk.records import InvalidResource, validate

H = dict[str, str]
VIETNAMESE = re.compile(r"[ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ]")


@pytest.mark.parametrize("message_id", sorted(MESSAGES))
def test_each_message_has_both_languages_with_the_same_parameters(message_id: str) -> None:
    text = MESSAGES[message_id]
    assert text.vi.strip() and text.en.strip() and text.vi != text.en
    assert placeholders(text.vi) == placeholders(text.en), message_id
    assert VIETNAMESE.search(text.vi.lower()), f"{message_id}: Vietnamese without diacritics?"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", message_id)
    params = {name: f"<{name}>" for name in placeholders(text.vi)}
    for lang in ("vi", "en"):
        rendered = msg(message_id, **params).text(lang)
        assert all(v in rendered for v in params.values()) and "{" not in rendered.replace(
            "{detail}", ""
        )


def test_every_message_the_api_names_is_in_the_catalogue_and_each_is_used() -> None:
    api = Path(errors.__file__).parent
    source = "".join(
        p.read_text(encoding="utf-8") for p in api.glob("*.py") if p.name != "messages.py"
    )
    named = set(re.findall(r'msg\(\s*"([a-z0-9-]+)"', source))
    assert named and named - set(MESSAGES) == set()
    # the records component names the messages of its validation issues where it raises them
    source += Path(inspect.getfile(validate)).read_text(encoding="utf-8")
    unused = {m for m in MESSAGES if f'"{m}"' not in source}
    assert unused == set()
    with pytest.raises(KeyError):
        msg("no-such-message")


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "vi"),
        ("", "vi"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("vi-VN,vi;q=0.9,en;q=0.8", "vi"),
        ("vi;q=0.5, en;q=0.8", "en"),
        ("fr-FR, en;q=0.5", "en"),
        ("fr-FR", "vi"),
        ("en;q=abc, vi", "vi"),
    ],
)
def test_the_language_is_what_accept_language_prefers(header: str | None, lang: str) -> None:
    assert lang_of(header) == lang


@pytest.mark.parametrize(
    ("body", "expected", "message_id"),
    [
        ([], None, "resource-not-object"),
        ({}, None, "resource-type-missing"),
        ({"resourceType": "Observation"}, "Patient", "resource-type-expected"),
        ({"resourceType": "Widget"}, None, "resource-type-unknown"),
        (
            {"resourceType": "Patient", "contained": [{"resourceType": "Widget"}]},
            None,
            "resource-type-unknown",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Widget"}}],
            },
            None,
            "resource-type-unknown",
        ),
        ({"resourceType": "Patient", "id": "a b"}, None, "resource-id-format"),
        ({"resourceType": "Patient", "colour": "blue"}, None, "element-unknown"),
        ({"resourceType": "Observation", "code": {"text": "x"}}, None, "element-required"),
        ({"resourceType": "Patient", "birthDate": "yesterday"}, None, "element-invalid"),
    ],
)
def test_each_validation_problem_has_its_message(
    body: Any, expected: str | None, message_id: str
) -> None:
    with pytest.raises(InvalidResource) as caught:
        validate(body, expected)
    assert message_id in {i.msg_id for i in caught.value.issues}  # named where raised
    assert message_id in {errors.issue_message(i).id for i in caught.value.issues}


@pytest.mark.parametrize(
    ("body", "expected", "vi", "en"),
    [
        ({"resourceType": "Observation"}, "Patient",
         "resourceType: Cần tài nguyên loại Patient nhưng nhận được Observation.",
         "resourceType: Expected a Patient resource, got Observation."),
        ({"resourceType": "Widget"}, None,
         "resourceType: 'Widget' không phải là loại tài nguyên FHIR R4.",
         "resourceType: 'Widget' is not a FHIR R4 resource type."),
        ({"resourceType": "Patient", "id": "a b"}, None,
         "Patient.id: Mã (id) phải gồm 1–64 ký tự A–Z, a–z, 0–9, '-' hoặc '.'.",
         "Patient.id: The id must be 1–64 characters of A–Z, a–z, 0–9, '-' or '.'."),
        ({"resourceType": "Observation", "code": {"text": "x"}}, None,  # the model's own check
         "Observation.status: Phần tử bắt buộc bị thiếu; hãy thêm nó.",
         "Observation.status: A required element is missing; add it."),
        ({"resourceType": "Immunization", "status": "completed"}, None,  # pydantic's
         "Immunization.vaccineCode: Phần tử bắt buộc bị thiếu; hãy thêm nó.",
         "Immunization.vaccineCode: A required element is missing; add it."),
        ({"resourceType": "Patient", "name": "x"}, None,
         "Patient.name: Giá trị không hợp lệ theo FHIR R4: Input should be a valid list.",
         "Patient.name: The value is not valid FHIR R4: Input should be a valid list."),
    ],
)  # fmt: skip
def test_a_validation_issue_reads_the_same_in_each_language(
    body: Any, expected: str | None, vi: str, en: str
) -> None:
    with pytest.raises(InvalidResource) as caught:
        validate(body, expected)
    for lang, text in (("vi", vi), ("en", en)):
        said = [i["diagnostics"] for i in errors.invalid_outcome(caught.value, lang)["issue"]]
        assert text in said


def _issue(resp: Any) -> dict[str, Any]:
    issue: dict[str, Any] = resp.json()["issue"][0]
    assert issue["details"]["coding"][0]["system"] == SYSTEM
    return issue


def test_a_bad_request_answers_vietnamese_by_default_and_english_on_request(
    client: TestClient, system_headers: H
) -> None:
    for path, body, message_id, status in (
        ("/fhir/Patient", b"{not json", "body-not-json", 400),
        ("/fhir/Patient", b"[1, 2]", "body-not-object", 400),
        ("/fhir/Widget", b"{}", "type-not-supported", 404),
    ):
        vi = client.post(path, content=body, headers=system_headers)
        en = client.post(path, content=body, headers={**system_headers, "Accept-Language": "en"})
        assert vi.status_code == en.status_code == status
        assert _issue(vi)["details"]["coding"][0]["code"] == message_id
        assert _issue(en)["details"]["coding"][0]["code"] == message_id
        assert _issue(vi)["diagnostics"] != _issue(en)["diagnostics"]
        assert VIETNAMESE.search(_issue(vi)["diagnostics"].lower())
        assert not VIETNAMESE.search(_issue(en)["diagnostics"].lower())
    vi = client.post("/fhir/Patient", content=b"{not json", headers=system_headers)
    assert _issue(vi)["diagnostics"].startswith("Thân yêu cầu không phải JSON hợp lệ")
    en = client.get("/fhir/Widget/1", headers={**system_headers, "Accept-Language": "en-GB"})
    assert _issue(en)["diagnostics"].startswith("Resource type 'Widget' is not supported")
    for lang, opening in (("vi", "Tham số tìm kiếm 'date' không hợp lệ: "),
                          ("en", "Search parameter 'date' is invalid: ")):  # fmt: skip
        bad = client.get("/fhir/Observation?date=yesterday",
                         headers={**system_headers, "Accept-Language": lang})  # fmt: skip
        assert bad.status_code == 400 and _issue(bad)["expression"] == ["date"]
        assert _issue(bad)["details"]["coding"][0]["code"] == "search-invalid"
        assert _issue(bad)["diagnostics"].startswith(opening)
        assert "search parameter 'date'" not in _issue(bad)["diagnostics"]  # said once


def test_a_resource_of_an_unknown_type_inside_another_is_refused_not_an_error(
    client: TestClient, system_headers: H
) -> None:
    patient = {"resourceType": "Patient", "contained": [{"resourceType": "Widget"}]}
    r = client.post("/fhir/Patient", json=patient, headers=system_headers)
    assert r.status_code == 400, r.text
    assert _issue(r)["details"]["coding"][0]["code"] == "resource-type-unknown"
    assert _issue(r)["diagnostics"] == "Patient: 'Widget' không phải là loại tài nguyên FHIR R4."


def test_invalid_resource_names_the_element_in_either_language(
    client: TestClient, system_headers: H
) -> None:
    patient = {"resourceType": "Patient", "colour": "blue"}
    vi = client.post("/fhir/Patient", json=patient, headers=system_headers)
    en = client.post("/fhir/Patient", json=patient,
                     headers={**system_headers, "Accept-Language": "en"})  # fmt: skip
    assert vi.status_code == en.status_code == 400
    for resp, words in ((vi, "Phần tử không xác định"), (en, "Unknown element")):
        issue = _issue(resp)
        assert issue["details"]["coding"][0]["code"] == "element-unknown"
        assert issue["expression"] == ["Patient.colour"]
        assert issue["diagnostics"].startswith(f"Patient.colour: {words}")


def _bundle(btype: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": btype, "entry": list(entries)}


def test_a_bundle_error_names_its_entry_in_the_language_asked(
    client: TestClient, system_headers: H
) -> None:
    ok = {"resource": {"resourceType": "Patient", "id": "p1"},
          "request": {"method": "PUT", "url": "Patient/p1"}}  # fmt: skip
    wrong_id = {"resource": {"resourceType": "Patient", "id": "p2"},
                "request": {"method": "PUT", "url": "Patient/p3"}}  # fmt: skip
    bundle = _bundle("transaction", ok, wrong_id)
    vi = client.post("/fhir", json=bundle, headers=system_headers)
    en = client.post("/fhir", json=bundle, headers={**system_headers, "Accept-Language": "en"})
    assert vi.status_code == en.status_code == 400
    assert _issue(vi)["expression"] == ["Bundle.entry[1]"]
    assert _issue(vi)["details"]["coding"][0]["code"] == "entry-id-mismatch"
    assert _issue(vi)["diagnostics"] == (
        "Bundle.entry[1] (PUT Patient/p3): Mã tài nguyên khác mã 'p3' trên request.url; hãy "
        "dùng cùng một mã."
    )
    assert _issue(en)["diagnostics"] == (
        "Bundle.entry[1] (PUT Patient/p3): The resource id differs from the URL id 'p3'; use the "
        "same id."
    )
    # a resource not valid FHIR: the element path inside the bundle
    bad = {"resource": {"resourceType": "Patient", "gender": 7},
           "request": {"method": "POST", "url": "Patient"}}  # fmt: skip
    r = client.post("/fhir", json=_bundle("transaction", ok, bad), headers=system_headers)
    assert r.status_code == 400
    assert _issue(r)["expression"] == ["Bundle.entry[1].resource.Patient.gender"]
    assert _issue(r)["details"]["coding"][0]["code"] == "element-invalid"
    assert _issue(r)["diagnostics"].startswith(
        "Bundle.entry[1].resource.Patient.gender: Giá trị không hợp lệ theo FHIR R4"
    )


def test_a_batch_entry_error_is_in_the_language_asked(
    client: TestClient, system_headers: H
) -> None:
    missing = {"request": {"method": "GET", "url": "Patient/nobody"}}
    delete = {"request": {"method": "DELETE", "url": "Patient"}}
    for lang, start_404, start_400 in (
        ("vi", "Patient/nobody không tồn tại", "Bundle.entry[1] (DELETE Patient): DELETE cần"),
        ("en", "Patient/nobody does not exist", "Bundle.entry[1] (DELETE Patient): DELETE needs"),
    ):
        r = client.post("/fhir", json=_bundle("batch", missing, delete),
                        headers={**system_headers, "Accept-Language": lang})  # fmt: skip
        assert r.status_code == 200, r.text
        first, second = (e["response"] for e in r.json()["entry"])
        assert first["status"].startswith("404") and second["status"] == "400"
        assert first["outcome"]["issue"][0]["details"]["coding"][0]["code"] == "not-found"
        assert first["outcome"]["issue"][0]["diagnostics"].startswith(start_404)
        assert second["outcome"]["issue"][0]["details"]["coding"][0]["code"] == "entry-delete-url"
        assert second["outcome"]["issue"][0]["diagnostics"].startswith(start_400)


def test_no_credentials_and_no_route_are_answered_in_either_language(client: TestClient) -> None:
    vi = client.get("/fhir/Patient")
    en = client.get("/fhir/Patient", headers={"Accept-Language": "en"})
    assert vi.status_code == en.status_code == 401
    assert _issue(vi)["details"]["coding"][0]["code"] == "login-required"
    assert _issue(vi)["diagnostics"].startswith("Cần đăng nhập")
    assert _issue(en)["diagnostics"].startswith("Authentication required")
    refused = client.get("/fhir/Patient", headers={"Authorization": "Bearer nonsense"})
    assert refused.status_code == 401
    assert _issue(refused)["details"]["coding"][0]["code"] == "login-refused"
    assert _issue(refused)["diagnostics"].startswith("Thông tin đăng nhập bị từ chối")
    nowhere = client.get("/nowhere/at/all", headers={"Accept-Language": "en"})
    assert nowhere.status_code == 404
    assert _issue(nowhere)["diagnostics"].startswith("There is no path /nowhere/at/all")


def test_a_refusal_of_the_policy_speaks_the_language_asked(
    client: TestClient, system_headers: H, token_for: Any
) -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "Đỗ", "given": ["Minh"]}]}
    made = client.put("/fhir/Patient/p-refused", json=patient, headers=system_headers)
    assert made.status_code == 201, made.text
    nobody = Actor(account_id="x", kind="system", scopes=frozenset(), client="tests")
    for lang in ("vi", "en"):
        r = client.get(
            "/fhir/Patient/p-refused", headers={**token_for(nobody), "Accept-Language": lang}
        )
        assert r.status_code == 403, r.text
        issue = _issue(r)
        assert issue["details"]["coding"][0]["code"] == "access-denied"
        opening = "Từ chối truy cập" if lang == "vi" else "Access denied"
        assert issue["diagnostics"].startswith(opening)
        assert " / " not in issue["diagnostics"]
