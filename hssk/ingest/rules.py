"""The quarantine rules: what each one means and how the sender fixes it (Vietnamese first).

Every rule ingestion can give (``Problem.rule``, ``XmlError.rule``, ``SourceError.rule``) is
listed here; a test scans the package for rule names, so a new rule cannot go unexplained.
The staff pages show these labels and hints, ``GET /api/v1/ingest/rules`` serves them to HIS
vendors, and the error itself still says what was wrong where (field, value).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    code: str
    vi: str  # what went wrong
    en: str
    fix_vi: str  # what the sender does about it
    fix_en: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_FIX_FILE_VI = "Xuất lại tệp từ phần mềm HIS (UTF-8, đủ thẻ đóng) rồi gửi lại cả tệp."
_FIX_FILE_EN = "Export the file again from the HIS (UTF-8, every tag closed) and send it again."

RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("record.moved", "Bản ghi đã lưu cho người khác", "Record stored for another person",
             "Hồ sơ đã gửi trước đây gắn với một người khác: dữ liệu không chuyển sang người "
             "mới. Nếu nhầm người bệnh, đề nghị Sở Y tế sửa trong sổ đăng ký (gộp/tách hồ sơ).",
             "The record sent before belongs to another person: data never moves to a new one. "
             "If the patient was wrong, ask the Department to correct the registry (merge/unmerge)."),
        Rule("required", "Thiếu trường bắt buộc", "Required element missing",
             "Nhập giá trị cho trường được nêu trong phần mềm HIS rồi gửi lại.",
             "Fill in the named element in the HIS and send again."),
        Rule("date.format", "Ngày giờ sai định dạng", "Date in the wrong format",
             "Ghi ngày theo dạng yyyymmdd hoặc yyyymmddHHMM (ví dụ 202501021030).",
             "Write dates as yyyymmdd or yyyymmddHHMM (e.g. 202501021030)."),
        Rule("date.impossible", "Ngày giờ không có thật", "Impossible date or time",
             "Kiểm tra ngày và tháng (ví dụ không có ngày 30/02), giờ 00–23, năm từ 1850.",
             "Check day and month (there is no 30 February), hours 00–23, years from 1850."),
        Rule("date.future", "Ngày ở tương lai", "Date in the future",
             "Sửa ngày vào viện, ra viện, y lệnh hoặc kết quả: không thể sau thời điểm gửi.",
             "Correct the admission, discharge, order or result date: it cannot be after "
             "the time of sending."),
        Rule("cccd.format", "Số CCCD không hợp lệ", "Invalid citizen ID (CCCD)",
             "CCCD gồm 12 chữ số: mã tỉnh đăng ký khai sinh, giới tính và thế kỷ, năm sinh; "
             "đối chiếu với thẻ của người bệnh (hộ chiếu ghi nguyên số hộ chiếu).",
             "A CCCD has 12 digits: birth-registration province, sex and century, year of "
             "birth; check it against the patient's card (a passport keeps its own number)."),
        Rule("bhyt.format", "Mã thẻ BHYT không hợp lệ", "Invalid health-insurance card",
             "Mã thẻ BHYT gồm 15 ký tự: 2 chữ cái, mức hưởng 1–5, 2 số mã tỉnh, 10 số mã BHXH; "
             "nhiều thẻ ngăn cách bằng dấu chấm phẩy.",
             "A BHYT card has 15 characters: 2 letters, benefit level 1–5, 2-digit province, "
             "the 10-digit social-insurance number; several cards are separated by ';'."),
        Rule("bhxh.format", "Mã số BHXH không hợp lệ", "Invalid social-insurance number",
             "Mã số BHXH gồm đúng 10 chữ số.", "A social-insurance number has exactly 10 digits."),
        Rule("cskcb.format", "Mã cơ sở KCB không hợp lệ", "Invalid facility code",
             "Mã cơ sở KCB gồm 5 ký tự, 2 số đầu là mã tỉnh (ví dụ 01001).",
             "A facility code has 5 characters, the first 2 the province (e.g. 01001)."),
        Rule("identifier.size", "Số giấy tờ quá dài", "Document number too long",
             "SO_CCCD chỉ ghi một số CCCD, hộ chiếu hoặc mã định danh điện tử.",
             "SO_CCCD holds one CCCD, passport or e-ID number only."),
        Rule("facility.unknown", "Cơ sở KCB chưa đăng ký", "Facility not registered",
             "Dùng đúng mã cơ sở của đơn vị gửi; cơ sở mới cần được Sở Y tế thêm vào danh mục "
             "('hssk ingest facilities').",
             "Use the sending unit's own facility code; a new facility is added to the list by "
             "the Department ('hssk ingest facilities')."),
        Rule("facility.mismatch", "Mã cơ sở khác với tệp", "Facility differs from the file's",
             "MA_CSKCB của hồ sơ phải trùng MACSKCB của tệp: tách hồ sơ của từng cơ sở ra tệp "
             "riêng.",
             "A hồ sơ's MA_CSKCB must equal the file's MACSKCB: send each facility's hồ sơ in "
             "its own file."),
        Rule("icd10.unknown", "Mã bệnh ICD-10 không hợp lệ", "Unknown ICD-10 code",
             "Chọn mã có trong danh mục ICD-10 của Bộ Y tế (chữ cái, 2 số, có thể thêm '.' và "
             "1–2 ký tự); nhiều mã ngăn cách bằng dấu chấm phẩy.",
             "Pick a code of the Ministry's ICD-10 list (letter, 2 digits, optionally '.' and "
             "1–2 characters); several codes are separated by ';'."),
        Rule("field.length", "Trường dài quá mức tối đa", "Field over its maximum length",
             "Rút gọn trường được nêu về độ dài tối đa mà phụ lục QĐ 4750 quy định cho trường "
             "đó (ví dụ MA_BENH_CHINH 7 ký tự, MA_CSKCB 5 ký tự).",
             "Shorten the named field to the maximum length the QĐ 4750 appendix sets for it "
             "(e.g. MA_BENH_CHINH 7 characters, MA_CSKCB 5)."),
        Rule("number", "Không phải số", "Not a number",
             "Ghi số bằng chữ số, dấu thập phân là dấu chấm (ví dụ 12000.50).",
             "Write numbers with digits and a decimal point (e.g. 12000.50)."),
        Rule("number.range", "Số vượt giới hạn", "Number out of range",
             "Kiểm tra lại số tiền, số lượng: giá trị quá lớn để là thật.",
             "Check the amount or quantity: the value is too large to be real."),
        Rule("value.range", "Giá trị ngoài khoảng cho phép", "Value out of range",
             "Kiểm tra đơn vị và giá trị (ví dụ cân nặng theo kg, huyết áp theo mmHg).",
             "Check the unit and the value (e.g. weight in kg, blood pressure in mmHg)."),
        Rule("dose.invalid", "Số mũi tiêm không hợp lệ", "Invalid dose number",
             "Ghi số thứ tự mũi tiêm (mui_so) là số nguyên từ 1 đến 99.",
             "Write the dose number (mui_so) as a whole number from 1 to 99."),
        Rule("duplicate-key", "Trùng khóa trong tệp", "Key repeated in the file",
             "Bản ghi đầu tiên đã được nhận; gửi bản sửa thành tệp riêng thay vì lặp lại trong "
             "cùng tệp.",
             "The first record was taken; send a correction as a file of its own instead of "
             "repeating it in the same file."),
        Rule("ma_lk.mismatch", "MA_LK khác lượt khám", "MA_LK differs from the visit's",
             "Mọi dòng của một hồ sơ phải mang cùng MA_LK với XML1.",
             "Every line of a hồ sơ carries the MA_LK of its XML1."),
        Rule("encounter.unknown", "Chưa có lượt khám", "Visit not on record",
             "Gửi hồ sơ kèm XML1 (hoặc XML0 khi vào viện) trước các dòng chi tiết.",
             "Send the hồ sơ with its XML1 (or the XML0 check-in) before detail lines."),
        Rule("patient.unknown", "Chưa có người bệnh", "Patient not known",
             "Gửi Patient trước các tài nguyên tham chiếu đến người đó.",
             "Send the Patient before the resources that refer to it."),
        Rule("fhir.invalid", "Tài nguyên FHIR không hợp lệ", "Invalid FHIR resource",
             "Sửa phần tử được nêu theo đặc tả FHIR R4 rồi gửi lại.",
             "Correct the named element according to FHIR R4 and send again."),
        Rule("xml.dtd", "Tệp có khai báo DOCTYPE/ENTITY", "DOCTYPE/ENTITY declared",
             "Bỏ khai báo <!DOCTYPE …> khỏi tệp: không nhận DTD vì lý do an toàn.",
             "Remove the <!DOCTYPE …> declaration: DTDs are refused for safety."),
        Rule("xml.syntax", "Sai cú pháp XML", "Malformed XML", _FIX_FILE_VI, _FIX_FILE_EN),
        Rule("xml.truncated", "Tệp bị cắt cụt", "Truncated file",
             "Tệp bị cắt giữa chừng: gửi lại toàn bộ tệp.",
             "The file stops midway: send the whole file again."),
        Rule("xml.encoding", "Sai mã hóa ký tự", "Wrong character encoding",
             "Lưu tệp theo mã hóa UTF-8 và khai báo đúng encoding=\"utf-8\" (một bảng khai "
             "báo ISO-8859-1 mà nội dung là UTF-8 được đọc theo UTF-8 và ghi chú lại; khi không "
             "phân định được thì bị giữ lại).",
             "Save the file as UTF-8 and declare encoding=\"utf-8\" (a table declaring "
             "ISO-8859-1 over UTF-8 bytes is read as UTF-8 and noted; when the bytes cannot "
             "tell, it is held back)."),
        Rule("xml.root", "Sai thẻ gốc", "Wrong root element",
             "Tệp hồ sơ bắt đầu bằng <GIAMDINHHS>; mỗi bảng bắt đầu bằng thẻ gốc của bảng đó "
             "(ví dụ <TONG_HOP> cho XML1).",
             "A hồ sơ file starts with <GIAMDINHHS>; each table starts with its own root "
             "(e.g. <TONG_HOP> for XML1)."),
        Rule("xml.base64", "NOIDUNGFILE không phải base64", "NOIDUNGFILE is not base64",
             "Mã hóa nội dung từng bảng bằng base64 chuẩn.",
             "Encode each table's content with standard base64."),
        Rule("xml.size", "Quá kích thước cho phép", "Over the size limit",
             "Mỗi bảng tối đa 8 MB, mỗi trường 100.000 ký tự: tách hồ sơ hoặc rút gọn trường.",
             "A table holds at most 8 MB and a field 100,000 characters: split or shorten."),
        Rule("xml.loaihoso", "LOAIHOSO không được nhận", "LOAIHOSO not taken",
             "LOAIHOSO là XML0 đến XML15, trừ XML12 (biên bản giám định y khoa nhập trên cổng "
             "BHXH, không gửi từ HIS): bỏ bảng đó khỏi hồ sơ.",
             "LOAIHOSO is XML0 to XML15 but XML12 (the medical-assessment record, entered on "
             "the insurance portal, not sent by a HIS): remove that table from the hồ sơ."),
        Rule("xml.empty", "Tệp rỗng", "Empty file", _FIX_FILE_VI, _FIX_FILE_EN),
        Rule("csv.empty", "Tệp CSV rỗng", "Empty CSV file",
             "Tệp CSV cần dòng tiêu đề và các dòng dữ liệu.",
             "A CSV file needs a header row and data rows."),
        Rule("csv.encoding", "Tệp CSV không phải UTF-8", "CSV file not UTF-8",
             "Lưu tệp CSV theo mã hóa UTF-8.", "Save the CSV file as UTF-8."),
        Rule("csv.syntax", "Sai cú pháp CSV", "Malformed CSV",
             "Kiểm tra dấu ngoặc kép và dấu phẩy ở dòng được nêu.",
             "Check the quotes and commas of the named row."),
        Rule("json.syntax", "Sai cú pháp JSON", "Malformed JSON",
             "Kiểm tra tệp bằng một trình kiểm tra JSON rồi gửi lại.",
             "Check the file with a JSON validator and send it again."),
        Rule("json.size", "Tệp JSON quá lớn", "JSON file too large",
             "Gửi dạng NDJSON (mỗi dòng một tài nguyên).",
             "Send NDJSON instead (one resource per line)."),
        Rule("file.missing", "Không tìm thấy tệp", "File not found",
             "Kiểm tra đường dẫn tệp.", "Check the file's path."),
        Rule("value.code", "Giá trị không thuộc danh mục", "Value not in the list",
             "Dùng một trong các giá trị được nêu trong lý do.",
             "Use one of the values named in the reason."),
        Rule("death.future", "Ngày mất ở tương lai", "Date of death in the future",
             "Sửa ngày giờ tử vong (giờ Việt Nam): không thể sau ngày gửi.",
             "Correct the date of death (Vietnam time): it cannot be after the day of sending."),
        Rule("death.before-birth", "Ngày mất trước ngày sinh", "Death before birth",
             "Kiểm tra ngày mất và người được báo tử (CCCD, họ tên, ngày sinh) rồi gửi lại.",
             "Check the date of death and the person reported (CCCD, name, birth date), then "
             "send again."),
        Rule("death.already-dead", "Người này đã được ghi nhận tử vong vào ngày khác",
             "Already recorded dead on another day",
             "Nếu ngày mất đã ghi là sai, đề nghị Sở Y tế lập đính chính; nếu bản ghi này sai "
             "người hoặc sai ngày, sửa rồi gửi lại.",
             "If the recorded date is wrong, ask the Department of Health for an amendment; if "
             "this record names the wrong person or date, correct it and send again."),
        Rule("death.unknown-person", "Không tìm thấy người được báo tử",
             "Person reported dead not found",
             "Gửi kèm thông tin nhận dạng (CCCD, họ tên, ngày sinh) của người mất.",
             "Send the identity of the deceased (CCCD, name, birth date) with the report."),
        Rule("date.before-birth", "Ngày trước ngày sinh của người này", "Date before birth",
             "Kiểm tra ngày khám/biến động và người được ghi (CCCD, họ tên, ngày sinh) rồi gửi "
             "lại.",
             "Check the date of the entry and the person (CCCD, name, birth date), then send "
             "again."),
        Rule("date.after-death", "Ngày sau ngày mất của người này", "Date after death",
             "Kiểm tra ngày và người được ghi; nếu ngày mất đã ghi là sai, trạm lập đính chính "
             "ngày mất.",
             "Check the date and the person; if the recorded date of death is wrong, the "
             "station files a correction of it."),
        Rule("household.unknown", "Mã hộ không có trong sổ hộ", "Unknown household code",
             "Kiểm tra mã hộ trên sổ hộ khẩu; hộ mới được lập bởi dòng của chủ hộ (quan_he_chu_ho "
             "= Chủ hộ).",
             "Check the code on the household book; a new household is founded by its head's "
             "row (quan_he_chu_ho = Chủ hộ)."),
        Rule("household.exists", "Mã hộ mới đã có trong sổ hộ", "New household code in use",
             "Chọn “Nhập hộ” để thêm người vào hộ đã có, hoặc kiểm tra lại mã hộ mới.",
             "Choose 'join' to add the person to the existing household, or check the new "
             "code."),
        Rule("icd10.chapter", "Mã ICD-10 không khớp chương với chẩn đoán",
             "ICD-10 code outside its diagnosis's chapter",
             "Bản ghi vẫn được lưu; kiểm tra mã và kết luận/nguyên nhân trong phần mềm của trạm.",
             "The record is stored all the same; check the code and the conclusion or cause in "
             "the station's software."),
        Rule("internal", "Lỗi xử lý của hệ thống", "Processing defect",
             "Không phải lỗi của bên gửi: bản ghi được giữ lại và phát lại sau khi sửa lỗi; "
             "báo cho bộ phận CNTT của Sở Y tế.",
             "Not the sender's fault: the record is kept and replayed after the fix; tell "
             "the Department's IT team."),
    )
}  # fmt: skip


def describe(code: str | None) -> Rule:
    """The rule's labels and hint; a code not (yet) listed gets a generic one."""
    if code and code in RULES:
        return RULES[code]
    return Rule(code or "?", "Lỗi khác", "Other error", "Xem lý do chi tiết bên dưới.",
                "See the detailed reason.")  # fmt: skip
