"""Interface strings of the supervision pages: Vietnamese first, English on ``?lang=en``."""

from __future__ import annotations

from collections.abc import Callable

STRINGS: dict[str, tuple[str, str]] = {
    "app": ("Giám sát hồ sơ sức khỏe điện tử", "Electronic health record supervision"),
    "skip": ("Bỏ qua, tới nội dung chính", "Skip to main content"),
    "nav.overview": ("Tổng quan", "Overview"),
    "nav.facilities": ("Cơ sở KCB", "Facilities"),
    "nav.quality": ("Chất lượng dữ liệu", "Data quality"),
    "area": ("Địa bàn", "Area"),
    "day": ("Ngày", "Date"),
    # the details of a data-quality finding (keys of quality.py's jsonb detail)
    "detail.rule": ("Quy tắc", "Rule"),
    "detail.cccd": ("CCCD", "CCCD"),
    "detail.birth_year": ("Năm sinh", "Birth year"),
    "detail.sex": ("Giới tính", "Sex"),
    "detail.bhyt": ("Mã thẻ BHYT", "BHYT card"),
    "detail.bhxh": ("Mã số BHXH", "BHXH number"),
    "detail.name_key": ("Tên chuẩn hóa", "Normalized name"),
    "detail.birth_date": ("Ngày sinh", "Birth date"),
    "detail.deceased_at": ("Ngày mất", "Date of death"),
    "detail.visits": ("Số lượt khám", "Visits"),
    "detail.last_visit": ("Lần khám cuối", "Last visit"),
    "detail.facilities": ("Cơ sở", "Facilities"),
    "rule.cccd_shared": ("Hai người cùng một CCCD", "Two people share one CCCD"),
    "rule.cccd_birth_year": ("CCCD không khớp năm sinh", "CCCD does not match the birth year"),
    "rule.cccd_sex": ("CCCD không khớp giới tính", "CCCD does not match the sex"),
    "rule.bhyt_bhxh": ("Mã BHYT không khớp mã BHXH", "BHYT card does not match the BHXH number"),
    "catalog": ("Bộ trường thông tin", "Field set"),
    "provisional": ("tạm thời — chờ danh mục chính thức", "provisional — awaiting the official list"),
    "progress": ("Tiến độ so với mục tiêu", "Progress against targets"),
    "goal": ("mục tiêu", "target"),
    "reached": ("đạt", "reached"),
    "not_reached": ("chưa đạt", "not reached"),
    "coverage": ("Độ bao phủ dân cư", "Population coverage"),
    "residents": ("Dân số quản lý", "Residents"),
    "with_record": ("Có hồ sơ SKĐT", "With a record"),
    "standardized": ("Đã chuẩn hóa", "Standardized"),
    "verified": ("Đã xác thực", "Verified"),
    "households": ("Hộ gia đình", "Households"),
    "deaths": ("Tử vong đã ghi nhận", "Deaths recorded"),
    "with_bhyt": ("Có thẻ BHYT", "Insured (BHYT)"),
    "with_cccd": ("Có CCCD", "With CCCD"),
    "children_u6": ("Trẻ dưới 6 tuổi", "Children under 6"),
    "children_u6_with_id": ("Trẻ dưới 6 tuổi có mã định danh", "Children under 6 with an id"),
    "completeness": ("Mức đầy đủ trung bình", "Mean completeness"),
    "distribution": ("Phân bố mức đầy đủ hồ sơ", "Completeness distribution"),
    "by_commune": ("Theo xã/phường", "By commune"),
    "by_district_old": ("Theo quận/huyện cũ (trước 2025)", "By former district (before 2025)"),
    "commune": ("Xã/phường", "Commune"),
    "district_old": ("Quận/huyện (cũ)", "District (former)"),
    "trend": ("Xu hướng 30 ngày", "30-day trend"),
    "records_per_day": ("Bản ghi nhận được mỗi ngày", "Records received per day"),
    "with_record_share_trend": ("Tỷ lệ dân có hồ sơ theo thời gian", "Share with a record over time"),
    "facilities": ("Cơ sở khám bệnh, chữa bệnh", "Health facilities"),
    "facility": ("Cơ sở", "Facility"),
    "code": ("Mã CSKCB", "Facility code"),
    "area_code": ("Mã địa bàn", "Area code"),
    "person_id": ("Mã người trong HSSK", "HSSK person id"),
    "last_receipt": ("Lần nhận gần nhất", "Last receipt"),
    "delay": ("Độ trễ khám → nhận (ngày, trung vị)", "Visit → receipt delay (days, median)"),
    "volume": ("Bản ghi/ngày", "Records/day"),
    "error_rate": ("Tỷ lệ lỗi", "Error rate"),
    "missing_fields": ("Trường hay thiếu", "Fields often missing"),
    "last14": ("14 ngày gần nhất", "Last 14 days"),
    "status": ("Trạng thái", "Status"),
    "status.ok": ("Đang gửi", "Sending"),
    "status.stopped": ("Ngừng gửi", "Stopped sending"),
    "status.never": ("Chưa từng gửi", "Never sent"),
    "stopped_alert": ("cơ sở đã ngừng gửi hoặc chưa từng gửi dữ liệu",
                      "facilities stopped sending or never sent data"),
    "export": ("Xuất dữ liệu", "Export"),
    "quality": ("Danh sách cần rà soát", "Lists to review"),
    "kind": ("Loại", "Kind"),
    "count": ("Số lượng", "Count"),
    "person": ("Người", "Person"),
    "birth_date": ("Ngày sinh", "Birth date"),
    "detail": ("Chi tiết", "Detail"),
    "no_data": ("Chưa có số liệu.", "No data yet."),
    "names_hidden": ("Cấp giám sát chỉ xem số tổng hợp; danh sách người cụ thể dành cho trạm y tế xã.",
                     "Supervisors see aggregates only; named lists are for commune stations."),
    "login_needed": ("Cần đăng nhập để xem trang này.", "Please sign in to see this page."),
    "denied": ("Không có quyền xem", "Not allowed"),
    "persons": ("người", "persons"),
    "lang_switch": ("English", "Tiếng Việt"),
    "logout": ("Đăng xuất", "Log out"),
}  # fmt: skip


def translator(lang: str) -> Callable[[str], str]:
    index = 1 if lang == "en" else 0

    def t(key: str) -> str:
        pair = STRINGS.get(key)
        return pair[index] if pair else key

    return t


def pick_lang(value: str | None) -> str:
    return "en" if value == "en" else "vi"
