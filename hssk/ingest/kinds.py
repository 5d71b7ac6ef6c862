"""The source kinds HSSK loads, each described once: which files are its own, who may send
them, whether they are signed, how they are mapped and batched, which element keys a record.

How a kind's files are read and mapped lives in ``sources`` (CSV registers and station
entries), ``xmlparse``/``map_xml130`` (hồ sơ), ``edocs`` and ``fhir_input``; this module is
the one list the job runner, the HTTP upload, the gateway and quarantine consult.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BATCH = 5_000


@dataclass(frozen=True)
class SourceKind:
    """One kind of source file."""

    name: str
    vi: str  # what it is, in Vietnamese
    en: str
    extensions: tuple[str, ...] = (".csv",)
    # its records name the sending facility (mã CSKCB), checked against the registered units
    checks_facility: bool = False
    # a national register: only the platform's own systems may load it
    register: bool = False
    # submissions may carry the facility's signature (CHUKYDONVI / detached JWS)
    signed: bool = False
    # mapped in worker processes: mapping costs more than pickling the result (jobs._pool_size)
    pooled: bool = False
    batch_units: int = DEFAULT_BATCH
    # the element that keys one record (named in duplicate-key errors)
    key_element: str = "ma_ban_ghi"
    # its records can report a death (registry.DEATH_SOURCES); the element that carries it
    death_element: str | None = None


KINDS_LIST: tuple[SourceKind, ...] = (
    SourceKind("xml130", "Hồ sơ KCB theo QĐ 130/4750 (và QĐ 4210)",
               "QĐ 130/4750 hồ sơ (and QĐ 4210)", (".xml",), checks_facility=True,
               signed=True, pooled=True, batch_units=500, key_element="MA_LK",
               death_element="KET_QUA_DTRI"),
    SourceKind("immunization", "Dữ liệu tiêm chủng", "Immunization registry",
               checks_facility=True, pooled=True),
    SourceKind("population", "Cơ sở dữ liệu quốc gia về dân cư", "Population register",
               register=True, death_element="ngay_mat"),
    SourceKind("insurance", "Dữ liệu thẻ BHYT", "Health-insurance register", register=True),
    SourceKind("station", "Nhập liệu của trạm y tế xã", "Commune health station entries",
               checks_facility=True, pooled=True, death_element="ngay_mat"),
    SourceKind("fhir", "Tài nguyên FHIR R4 (Bundle, NDJSON)", "FHIR R4 resources (Bundle, NDJSON)",
               (".json", ".ndjson"), pooled=True, batch_units=2000, key_element="id"),
    SourceKind("facilities", "Danh mục cơ sở KCB", "Facility list", register=True,
               key_element="id"),
    SourceKind("edoc", "Giấy tờ điện tử (giấy chứng sinh, báo tử, ...)",
               "E-documents (birth certificates, death notices, ...)", (".xml",),
               checks_facility=True, signed=True, pooled=True, key_element="SO",
               death_element="NGAY_TU_VONG"),
)  # fmt: skip

BY_NAME: dict[str, SourceKind] = {k.name: k for k in KINDS_LIST}
KINDS: tuple[str, ...] = tuple(BY_NAME)


class UnknownKind(ValueError):
    """A kind that HSSK does not load."""


def kind(name: str) -> SourceKind:
    """The kind called ``name``; UnknownKind (naming the known ones) otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownKind(f"unknown kind '{name}' (one of {', '.join(KINDS)})") from None
