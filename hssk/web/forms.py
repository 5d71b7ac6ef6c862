"""Form validation with bilingual messages shown next to the field (what is wrong, how to fix).

A form is a dict of raw strings; validators return typed values and collect ``FieldError``s
instead of raising, so the page can show every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class FieldError:
    field: str
    vi: str
    en: str

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.vi


@dataclass
class Form:
    """Raw values plus the errors found while reading them."""

    raw: dict[str, str]
    errors: list[FieldError] = field(default_factory=list)
    warned: set[str] = field(default_factory=set)  # fields the user may confirm as they are

    def error(self, name: str, vi: str, en: str) -> None:
        self.errors.append(FieldError(name, vi, en))

    def warn(self, name: str, vi: str, en: str) -> None:
        """A doubt about a value: it stops the form until the user confirms the value (the
        page shows a box to tick, ``{name}_confirmed``)."""
        self.error(name, vi, en)
        self.warned.add(name)

    def by_field(self, lang: str) -> dict[str, str]:
        """Each field's messages, joined."""
        out: dict[str, list[str]] = {}
        for e in self.errors:
            out.setdefault(e.field, []).append(e.text(lang))
        return {k: " ".join(v) for k, v in out.items()}

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self, name: str, *, required: bool = False, max_len: int = 500) -> str | None:
        value = (self.raw.get(name) or "").strip()
        if not value:
            if required:
                self.error(name, "Vui lòng nhập trường này.", "This field is required.")
            return None
        if len(value) > max_len:
            self.error(
                name,
                f"Quá dài ({len(value)} ký tự); tối đa {max_len} ký tự.",
                f"Too long ({len(value)} characters); at most {max_len}.",
            )
            return None
        return value

    def number(
        self, name: str, low: float, high: float, unit: str, *, required: bool = False
    ) -> float | None:
        value = self.text(name, required=required, max_len=20)
        if value is None:
            return None
        try:
            number = float(value.replace(",", "."))  # Vietnamese decimal comma
        except ValueError:
            self.error(
                name,
                f"“{value}” không phải là số; nhập số, ví dụ {low:g}.",
                f"“{value}” is not a number; enter a number such as {low:g}.",
            )
            return None
        if not low <= number <= high:
            self.error(
                name,
                f"Giá trị {number:g} {unit} ngoài khoảng hợp lý ({low:g}–{high:g} {unit}); "
                "kiểm tra lại đơn vị và số đã nhập.",
                f"{number:g} {unit} is outside the plausible range ({low:g}–{high:g} {unit}); "
                "check the unit and the number.",
            )
            return None
        return number

    def day(
        self, name: str, *, required: bool = False, not_future: bool = True, today: date
    ) -> date | None:
        value = self.text(name, required=required, max_len=10)
        if value is None:
            return None
        parsed: date | None = None
        try:
            if "/" in value:  # dd/mm/yyyy, the usual Vietnamese way of writing a date
                d, mth, y = value.split("/")
                parsed = date(int(y), int(mth), int(d))
            else:
                parsed = date.fromisoformat(value)
        except ValueError:
            self.error(
                name,
                f"Ngày “{value}” không hợp lệ; nhập theo dạng ngày/tháng/năm, ví dụ 05/03/2026.",
                f"“{value}” is not a valid date; use dd/mm/yyyy, e.g. 05/03/2026.",
            )
            return None
        if not_future and parsed > today:
            self.error(
                name,
                f"Ngày {parsed:%d/%m/%Y} ở tương lai; nhập ngày đã diễn ra.",
                f"{parsed:%d/%m/%Y} is in the future; enter a past date.",
            )
            return None
        return parsed

    def choice(self, name: str, allowed: dict[str, str], *, required: bool = True) -> str | None:
        value = self.text(name, required=required, max_len=40)
        if value is None:
            return None
        if value not in allowed:
            self.error(
                name,
                "Lựa chọn không hợp lệ; chọn một trong: " + ", ".join(allowed.values()) + ".",
                "Invalid choice; pick one of: " + ", ".join(allowed) + ".",
            )
            return None
        return value
