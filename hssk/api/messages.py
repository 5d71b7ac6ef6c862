"""The FHIR API's error texts, Vietnamese first and English, each under a message id.

An OperationOutcome issue carries the id in ``details.coding`` (clients match on it, not on
the text) and the text in the language the request prefers (``Accept-Language``). Each text
says what is wrong, where, why and how to fix it; ``{name}`` placeholders take parameters.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

# the code system of the message ids in ``OperationOutcome.issue.details.coding``
SYSTEM = "https://hssk.gov.vn/fhir/CodeSystem/api-message"
LANGS = ("vi", "en")


@dataclass(frozen=True)
class Text:
    vi: str
    en: str


MESSAGES: dict[str, Text] = {
    # the request body
    "body-too-large": Text(
        "Thân yêu cầu lớn hơn 50 MB; hãy chia Bundle thành nhiều Bundle nhỏ hơn rồi gửi lại.",
        "The request body is over 50 MB; split the Bundle into smaller ones and resend.",
    ),
    "body-not-json": Text(
        "Thân yêu cầu không phải JSON hợp lệ ({detail}); hãy sửa cú pháp JSON rồi gửi lại.",
        "The request body is not valid JSON ({detail}); fix the JSON syntax and resend.",
    ),
    "body-not-object": Text(
        "Thân yêu cầu phải là một đối tượng JSON (một tài nguyên FHIR), không phải mảng hay giá "
        "trị đơn.",
        "The request body must be a JSON object (a FHIR resource), not an array or a bare value.",
    ),
    "body-too-deep": Text(
        "Thân yêu cầu lồng các đối tượng và mảng sâu quá {limit} cấp; không tài nguyên FHIR nào "
        "cần sâu như vậy, hãy làm phẳng lại.",
        "The request body nests objects and arrays more than {limit} levels deep; no FHIR "
        "resource needs that many, flatten it.",
    ),
    "nested-too-deep": Text(
        "Yêu cầu lồng nhau quá sâu để xử lý; hãy làm phẳng (tối đa 64 cấp đối tượng và mảng).",
        "The request is nested too deeply to be processed; flatten it (at most 64 levels of "
        "objects and arrays).",
    ),
    "value-unstorable": Text(
        "Yêu cầu chứa một giá trị kho dữ liệu không lưu được (như ký tự NUL \\u0000 hoặc một số "
        "vượt giới hạn); hãy bỏ giá trị đó rồi gửi lại (mã {sqlstate}).",
        "The request holds a value the store cannot keep (such as a NUL character \\u0000 or an "
        "out-of-range number); remove it and retry ({sqlstate}).",
    ),
    "request-invalid": Text(
        "Tham số yêu cầu {path} không hợp lệ: {detail}.",
        "Request parameter {path} is invalid: {detail}.",
    ),
    # the resource type, id and version in the URL
    "type-not-supported": Text(
        "Loại tài nguyên '{type}' không được hỗ trợ; xem các loại được hỗ trợ tại /fhir/metadata.",
        "Resource type '{type}' is not supported; see /fhir/metadata for the supported ones.",
    ),
    "id-mismatch": Text(
        "Mã tài nguyên '{body_id}' trong thân yêu cầu khác mã '{url_id}' trên URL; hãy dùng cùng "
        "một mã.",
        "The resource id '{body_id}' differs from the URL id '{url_id}'; use the same id.",
    ),
    "version-not-number": Text(
        "Phiên bản '{version}' phải là một số nguyên (ví dụ _history/3).",
        "Version '{version}' must be a number (such as _history/3).",
    ),
    "etag-invalid": Text(
        "If-Match '{value}' không phải ETag phiên bản dạng W/\"3\".",
        "If-Match '{value}' is not a version ETag like W/\"3\".",
    ),
    "if-none-exist-multiple": Text(
        "If-None-Exist '{condition}' khớp {count} tài nguyên, không phải một; hãy thu hẹp điều "
        "kiện (ví dụ theo identifier).",
        "If-None-Exist '{condition}' matches {count} resources, not one; narrow the condition "
        "(such as by identifier).",
    ),
    # reads
    "not-found": Text(
        "{ref} không tồn tại; hãy kiểm tra loại và mã tài nguyên.",
        "{ref} does not exist; check the resource type and id.",
    ),
    "gone": Text(
        "{ref} đã bị xóa; lịch sử phiên bản vẫn đọc được qua _history.",
        "{ref} was deleted; its versions can still be read through _history.",
    ),
    "version-conflict": Text(
        "Xung đột phiên bản: {detail}; hãy đọc lại phiên bản mới nhất rồi cập nhật với If-Match "
        "của nó.",
        "Version conflict: {detail}; read the newest version again and update with its If-Match.",
    ),
    "patient-not-linked": Text(
        "Patient/{id} chưa được liên kết với một người trong chỉ mục bệnh nhân.",
        "Patient/{id} is not linked to a person in the patient index.",
    ),
    # search
    "search-invalid": Text(
        "Tham số tìm kiếm '{param}' không hợp lệ: {detail}.",
        "Search parameter '{param}' is invalid: {detail}.",
    ),
    "search-unknown-params": Text(
        "Tham số tìm kiếm {params} không được hỗ trợ cho {type}; dùng: {known} (Prefer: "
        "handling=lenient bỏ qua các tham số không hỗ trợ).",
        "Unknown search parameter {params} for {type}; supported: {known} (Prefer: "
        "handling=lenient leaves unknown parameters out).",
    ),
    "search-ignored-params": Text(
        "Đã bỏ qua tham số tìm kiếm không hỗ trợ: {params}.",
        "Ignored unknown search parameters: {params}.",
    ),
    # $match
    "match-needs-parameters": Text(
        "$match nhận một tài nguyên Parameters có tham số 'resource'.",
        "$match takes a Parameters resource with a 'resource' parameter.",
    ),
    "match-needs-patient": Text(
        "Tham số 'resource' phải chứa một Patient.",
        "Parameter 'resource' must hold a Patient.",
    ),
    "match-count-range": Text(
        "Tham số 'count' phải là số nguyên từ 1 đến 100.",
        "Parameter 'count' must be an integer from 1 to 100.",
    ),
    "match-input": Text(
        "Patient trong $match chưa đủ để tìm: {detail}.",
        "The Patient given to $match is not enough to search: {detail}.",
    ),
    # access
    "login-required": Text(
        "Cần đăng nhập: gửi tiêu đề 'Authorization: Bearer <token>' với một token còn hạn.",
        "Authentication required: send 'Authorization: Bearer <token>' with a valid token.",
    ),
    "login-refused": Text(
        "Thông tin đăng nhập bị từ chối: {reason}; hãy lấy token mới.",
        "The credentials were refused: {reason}; get a new token.",
    ),
    "access-denied": Text("Từ chối truy cập: {reason}.", "Access denied: {reason}."),
    "move-refused": Text(
        "{ref}: không thể chuyển một tài nguyên sang người khác; hãy tạo tài nguyên mới.",
        "{ref}: a resource cannot be moved to another person; create a new one.",
    ),
    "route-not-found": Text(
        "Không có đường dẫn {path} trên máy chủ; xem /fhir/metadata và /docs.",
        "There is no path {path} on this server; see /fhir/metadata and /docs.",
    ),
    "method-not-allowed": Text(
        "Phương thức {method} không dùng được với {path}; xem /fhir/metadata.",
        "Method {method} is not allowed on {path}; see /fhir/metadata.",
    ),
    "http-error": Text("Lỗi HTTP {status}: {detail}.", "HTTP error {status}: {detail}."),
    "internal-error": Text(
        "Lỗi nội bộ; sự cố đã được ghi lại, hãy thử lại sau.",
        "Internal error; the incident was logged, retry later.",
    ),
    # transaction and batch Bundles
    "bundle-type": Text(
        "POST /fhir nhận một Bundle loại 'transaction' hoặc 'batch'.",
        "POST /fhir takes a Bundle of type 'transaction' or 'batch'.",
    ),
    "entry-request-missing": Text(
        "Bundle.entry[{index}].request bị thiếu; mỗi mục cần request.method và request.url.",
        "Bundle.entry[{index}].request is missing; each entry needs request.method and "
        "request.url.",
    ),
    "entry-method-unsupported": Text(
        "Bundle.entry[{index}].request.method '{method}' không được hỗ trợ; dùng GET, POST, PUT, "
        "DELETE hoặc HEAD.",
        "Bundle.entry[{index}].request.method '{method}' is not supported; use GET, POST, PUT, "
        "DELETE or HEAD.",
    ),
    "entry-get-unsupported": Text(
        "GET '{url}' không được hỗ trợ trong Bundle; dùng Type?search, Type/id, Type/id/_history "
        "hoặc Type/id/_history/version.",
        "GET '{url}' is not supported in a bundle; use Type?search, Type/id, Type/id/_history or "
        "Type/id/_history/version.",
    ),
    "entry-reference-dangling": Text(
        "Tham chiếu '{reference}' không trỏ tới mục nào của Bundle (không có fullUrl nào như "
        "vậy); hãy thêm mục đó hoặc sửa tham chiếu.",
        "Reference '{reference}' names no entry of the Bundle (no such fullUrl); add that entry "
        "or fix the reference.",
    ),
    "entry-conditional-reference": Text(
        "Tham chiếu có điều kiện '{reference}' khớp {count} tài nguyên, phải đúng một.",
        "The conditional reference '{reference}' matches {count} resources, not one.",
    ),
    "entry-type-not-supported": Text(
        "Loại tài nguyên '{type}' không được hỗ trợ ở đây; xem /fhir/metadata.",
        "Resource type '{type}' is not supported here; see /fhir/metadata.",
    ),
    "entry-operation": Text(
        "Thao tác '{url}' không được hỗ trợ trong Bundle; hãy gọi nó riêng.",
        "Operation '{url}' is not supported in a bundle; call it on its own.",
    ),
    "entry-type-mismatch": Text(
        "Loại tài nguyên khác loại trên request.url; hãy dùng cùng một loại.",
        "The resource type differs from the request URL; use the same type.",
    ),
    "entry-if-none-exist-multiple": Text(
        "ifNoneExist '{condition}' khớp {count} tài nguyên, không phải một; hãy thu hẹp điều kiện.",
        "ifNoneExist '{condition}' matches {count} resources, not one; narrow the condition.",
    ),
    "entry-condition-multiple": Text(
        "Điều kiện khớp {count} tài nguyên, không phải một; hãy thu hẹp điều kiện.",
        "The condition matches {count} resources, not one; narrow the condition.",
    ),
    "entry-put-url": Text(
        "PUT cần request.url dạng 'Type/id' hoặc 'Type?search'.",
        "PUT needs a request.url like 'Type/id' or 'Type?search'.",
    ),
    "entry-id-mismatch": Text(
        "Mã tài nguyên khác mã '{id}' trên request.url; hãy dùng cùng một mã.",
        "The resource id differs from the URL id '{id}'; use the same id.",
    ),
    "entry-delete-url": Text(
        "DELETE cần request.url dạng 'Type/id' hoặc 'Type?search'.",
        "DELETE needs a request.url like 'Type/id' or 'Type?search'.",
    ),
    "entry-touched-twice": Text(
        "{ref} cũng bị thay đổi bởi mục {other}; mỗi tài nguyên chỉ được thay đổi một lần trong "
        "một Bundle.",
        "{ref} is also changed by entry {other}; a Bundle may change each resource once.",
    ),
    # FHIR R4 conformance of a resource (the records component's validation)
    "resource-not-object": Text(
        "Một tài nguyên FHIR phải là một đối tượng JSON.",
        "A FHIR resource must be a JSON object.",
    ),
    "resource-type-missing": Text(
        'Thiếu resourceType; hãy ghi loại tài nguyên, ví dụ "resourceType": "Patient".',
        'resourceType is missing; name the resource type, such as "resourceType": "Patient".',
    ),
    "resource-type-expected": Text(
        "Cần tài nguyên loại {expected} nhưng nhận được {got}.",
        "Expected a {expected} resource, got {got}.",
    ),
    "resource-type-unknown": Text(
        "'{type}' không phải là loại tài nguyên FHIR R4.",
        "'{type}' is not a FHIR R4 resource type.",
    ),
    "resource-id-format": Text(
        "Mã (id) phải gồm 1–64 ký tự A–Z, a–z, 0–9, '-' hoặc '.'.",
        "The id must be 1–64 characters of A–Z, a–z, 0–9, '-' or '.'.",
    ),
    "element-unknown": Text(
        "Phần tử không xác định (không thuộc tài nguyên này trong FHIR R4); hãy bỏ nó hoặc dùng "
        "extension.",
        "Unknown element (not part of this resource in FHIR R4); remove it or use an extension.",
    ),
    "element-required": Text(
        "Phần tử bắt buộc bị thiếu; hãy thêm nó.",
        "A required element is missing; add it.",
    ),
    "element-invalid": Text(
        "Giá trị không hợp lệ theo FHIR R4: {detail}.",
        "The value is not valid FHIR R4: {detail}.",
    ),
}


def placeholders(text: str) -> set[str]:
    """The parameter names a text takes."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@dataclass(frozen=True)
class Message:
    """A message id with its parameters; ``where`` (an element path or a bundle entry, the same
    in both languages) goes before the text."""

    id: str
    params: dict[str, Any] = field(default_factory=dict)
    where: str = ""

    def text(self, lang: str = "vi") -> str:
        pair = MESSAGES[self.id]
        body = (pair.en if lang == "en" else pair.vi).format(**self.params)
        return f"{self.where}: {body}" if self.where else body


def msg(message_id: str, *, where: str = "", **params: Any) -> Message:
    """A message of the catalogue (an unknown id fails at once, not when rendered)."""
    if message_id not in MESSAGES:
        raise KeyError(message_id)
    return Message(message_id, params, where)


def bilingual(reason: str, lang: str) -> str:
    """One side of a 'Vietnamese / English' text (as the access policy writes its reasons)."""
    vi, sep, en = reason.partition(" / ")
    return (en if lang == "en" else vi) if sep else reason


def lang_of(accept_language: str | None) -> str:
    """'en' when the Accept-Language header prefers English over Vietnamese, else 'vi'."""
    best, best_q = "vi", 0.0
    for part in (accept_language or "").split(","):
        tag, _, rest = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        quality = 1.0
        for p in rest.split(";"):
            key, _, value = p.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if primary in LANGS and quality > best_q:
            best, best_q = primary, quality
    return best
