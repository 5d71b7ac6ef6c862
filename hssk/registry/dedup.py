"""Batch deduplication of a whole file or registry: Splink (DuckDB) + guarded clustering.

1. Records are normalized in Python (hssk.registry.prepare) into the matching features, in
   one process per core for a large file (parsing free-text addresses is most of the cost).
2. Splink, on DuckDB, generates candidate pairs with the same blocking keys as online linking
   and scores them with the same Fellegi–Sunter levels and m/u values (model.LEVELS), with
   term-frequency adjustment on exact names. Its Spark backend runs the same settings at
   national scale.
3. Pairs above a loose pre-threshold are re-scored by model.compare (vetoes, name frequency),
   exactly as online linking does.
4. Clustering joins two clusters only through a strong edge (≥ match_upper) and only when no
   member of one vetoes a member of the other (different valid CCCD, temporary card, given
   name, birth date beyond a typo) — so chains of weak matches never join unrelated persons.
   A record nearly equally close to two persons that are distinct is left for review.
"""

from __future__ import annotations

import gc
import math
import os
import re
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from multiprocessing import get_context
from operator import attrgetter
from typing import Any

from hssk.kernel import processes
from hssk.kernel.config import load_settings
from hssk.registry.address import FUZZY_TOKEN
from hssk.registry.link import AMBIGUITY_BITS, features_of
from hssk.registry.model import (
    GENERATION,
    LEVELS,
    PRIOR,
    Features,
    compare,
    name_distance,
    strong_identifier,
    vietnamese_like,
)
from hssk.registry.prepare import Prepared, prepare
from hssk.registry.train import apply_active
from hssk.registry.types import SourceRecord

MAX_CLUSTER = 50  # a person has a few dozen source records at most; larger is a chain


@dataclass
class DedupResult:
    """Cluster id per input record (records of one person share it) and what happened."""

    cluster: list[int]
    review_pairs: list[tuple[int, int, float]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


# --- Splink settings from the shared model --------------------------------------------------
_SPARK_SQL = (
    # DuckDB → Spark SQL for the few functions that differ (Splink registers the similarity
    # UDFs jaro_winkler and damerau_levenshtein on Spark from its jar)
    (re.compile(r"list_has_all\((\w+), (\w+)\)"), r"size(array_except(\2, \1)) = 0"),
    (re.compile(r"list_has_any\((\w+), (\w+)\)"), r"arrays_overlap(\1, \2)"),
    (re.compile(r"list_contains\("), "array_contains("),
    (re.compile(r"\blen\("), "size("),
    (re.compile(r"jaro_winkler_similarity\("), "jaro_winkler("),
    (re.compile(r" AS VARCHAR\)"), " AS STRING)"),
)
_DIALECT = ["duckdb"]  # set by splink_settings() while it builds the comparisons


def _sql(sql: str) -> str:
    if _DIALECT[0] == "spark":
        for pattern, repl in _SPARK_SQL:
            sql = pattern.sub(repl, sql)
    return sql


def _lvl(sql: str, label: str, fld: str, level: str, tf: str | None = None) -> Any:
    import splink.comparison_level_library as cll

    m, u = LEVELS[fld][level]
    c = cll.CustomLevel(_sql(sql), label, base_dialect_str=_DIALECT[0]).configure(
        m_probability=m, u_probability=u
    )
    if tf:
        c = c.configure(tf_adjustment_column=tf, tf_adjustment_weight=1.0)
    return c


def _null(sql: str) -> Any:
    import splink.comparison_level_library as cll

    return cll.CustomLevel(_sql(sql), "null", base_dialect_str=_DIALECT[0]).configure(
        is_null_level=True
    )


def _simple(fld: str, col: str) -> Any:
    import splink.comparison_library as cl

    return cl.CustomComparison(
        [
            _null(f"{col}_l IS NULL OR {col}_r IS NULL"),
            _lvl(f"{col}_l = {col}_r", "same", fld, "same"),
            _lvl("TRUE", "else", fld, "else"),
        ],
        output_column_name=fld,
    )


def _edits(col: str, k: int) -> str:
    """SQL: ``damerau_levenshtein(col_l, col_r) <= k``, after two cheap conditions it implies
    (lengths at most k apart; Levenshtein, which counts a transposition as two edits, at most
    2k). The same truth value, NULL included: the function is the costliest of the
    comparisons (2 µs a pair for full names) and a CASE condition stops at its first false
    term, so most pairs never reach it."""
    a, b = f"{col}_l", f"{col}_r"
    return (
        f"(abs(length({a}) - length({b})) <= {k} AND levenshtein({a}, {b}) <= {2 * k}"
        f" AND damerau_levenshtein({a}, {b}) <= {k})"
    )


def _tokens_agree(left: str, right: str) -> str:
    """SQL of ``address.tokens_agree`` on the left record's token list ``addr_{left}`` and the
    right one's ``addr_{right}`` ('s' street or hamlet, 'a' area). The lambdas (one letter
    apart) run only when the lists' ``token_ends`` meet, which they must for such a pair."""
    lt, rt = f"addr_{left}_l", f"addr_{right}_r"
    le, re_ = f"addr_{left}x_l", f"addr_{right}x_r"
    n = FUZZY_TOKEN
    near = f"length(x) >= {n} AND length(y) >= {n} AND damerau_levenshtein(x, y) <= 1"
    if _DIALECT[0] == "spark":
        return (
            f"(arrays_overlap({lt}, {rt}) OR (arrays_overlap({le}, {re_})"
            f" AND exists({lt}, x -> exists({rt}, y -> {near}))))"
        )
    return (
        f"(list_has_any({lt}, {rt}) OR (list_has_any({le}, {re_}) AND len(list_filter({lt},"
        f" lambda x: len(list_filter({rt}, lambda y: {near})) > 0)) > 0))"
    )


def token_ends(tokens: Iterable[str]) -> list[str]:
    """'<' and the first three letters, '>' and the last three, of each token long enough
    for ``address.tokens_agree`` to forgive a typing error: one edit (a letter replaced,
    added, dropped or two swapped) in tokens of seven letters or more leaves the first three
    or the last three whole, so two such tokens share one of these."""
    out = {f"<{t[:3]}" for t in tokens if len(t) >= FUZZY_TOKEN}
    out.update(f">{t[-3:]}" for t in tokens if len(t) >= FUZZY_TOKEN)
    return sorted(out)


def splink_settings(dialect: str = "duckdb") -> Any:
    """Splink SettingsCreator of the Vietnamese-aware model (no training: m/u are fixed), in
    the SQL dialect of the backend: 'duckdb' (one machine) or 'spark' (national scale)."""
    _DIALECT[0] = dialect
    try:
        return _settings()
    finally:
        _DIALECT[0] = "duckdb"


def _settings() -> Any:
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    both_d = "prec_l = 'D' AND prec_r = 'D'"
    name = cl.CustomComparison(
        [
            _null("name_key_l IS NULL OR name_key_r IS NULL"),
            _lvl(
                "name_key_l = name_key_r AND disp_l = disp_r AND ((diac_l AND diac_r)"
                " OR NOT (diac_l OR diac_r OR kinh_l))",
                "exact",
                "name",
                "exact",
                "name_key",
            ),
            _lvl("name_key_l = name_key_r", "exact folded", "name", "exact_folded", "name_key"),
            _lvl("name_sorted_l = name_sorted_r", "reordered", "name", "reordered"),
            _lvl(
                "family_l = family_r AND given_l = given_r AND (middle_l IS NULL OR middle_r IS NULL"
                " OR list_has_all(middle_words_l, middle_words_r)"
                " OR list_has_all(middle_words_r, middle_words_l))"
                " OR ((family_l <> family_r OR given_l <> given_r) AND ("
                "(n_words_r >= 2 AND n_words_r < n_words_l AND n_distinct_r = n_words_r"
                " AND list_has_all(name_words_l, name_words_r))"
                " OR (n_words_l >= 2 AND n_words_l < n_words_r AND n_distinct_l = n_words_l"
                " AND list_has_all(name_words_r, name_words_l))))",
                "family+given",
                "name",
                "family_given",
            ),
            _lvl(
                f"family_l = family_r AND given_l = given_r AND NOT {_edits('middle', 1)}",
                "middle differs",
                "name",
                "middle_differs",
            ),
            _lvl("compact_l = compact_r", "spacing", "name", "spacing"),
            _lvl(
                f"(family_l = family_r AND given_l = given_r) OR {_edits('compact', 1)}"
                " OR jaro_winkler_similarity(name_key_l, name_key_r) >= 0.92",
                "fuzzy",
                "name",
                "fuzzy",
            ),
            _lvl(
                _edits("scompact", 1),
                "reordered fuzzy",
                "name",
                "reordered_fuzzy",
            ),
            _lvl(
                "(n_words_l = 1 AND list_contains(name_words_r, name_key_l))"
                " OR (n_words_r = 1 AND list_contains(name_words_l, name_key_r))",
                "partial",
                "name",
                "partial",
            ),
            _lvl("given_l = given_r", "given", "name", "given"),
            _lvl(
                f"{_edits('compact', 2)} OR {_edits('scompact', 2)}",
                "fuzzy2",
                "name",
                "fuzzy2",
            ),
            _lvl("list_has_any(name_words_l, name_words_r)", "shared word", "name", "word"),
            _lvl("TRUE", "else", "name", "else"),
        ],
        output_column_name="name",
    )
    birth = cl.CustomComparison(
        [
            _null(
                "(bd_l IS NULL OR bd_r IS NULL) AND (bd8_l IS NULL OR bd8_r IS NULL"
                f" OR NOT {_edits('bd8', 2)})"
            ),
            _lvl("bd_l IS NULL OR bd_r IS NULL", "impossible date", "birth", "slip"),
            _lvl(f"{both_d} AND bd_l = bd_r", "exact", "birth", "exact"),
            _lvl(
                f"{both_d} AND yr_l = yr_r AND month(bd_l) = day(bd_r) AND day(bd_l) = month(bd_r)",
                "swap",
                "birth",
                "swap",
            ),
            _lvl(
                f"{both_d} AND month(bd_l) = month(bd_r) AND day(bd_l) = day(bd_r)"
                " AND (abs(yr_l - yr_r) = 1 OR (levenshtein(CAST(yr_l AS VARCHAR),"
                f" CAST(yr_r AS VARCHAR)) <= 1 AND abs(yr_l - yr_r) < {GENERATION}))",
                "year typo",
                "birth",
                "year_typo",
            ),
            _lvl(
                f"{both_d} AND ((yr_l = yr_r AND month(bd_l) = month(bd_r)"
                " AND (abs(day(bd_l) - day(bd_r)) = 1"
                " OR levenshtein(CAST(day(bd_l) AS VARCHAR), CAST(day(bd_r) AS VARCHAR)) <= 1))"
                " OR (yr_l = yr_r AND day(bd_l) = day(bd_r) AND (abs(month(bd_l) - month(bd_r)) = 1"
                " OR levenshtein(CAST(month(bd_l) AS VARCHAR), CAST(month(bd_r) AS VARCHAR)) <= 1))"
                " OR (month(bd_l) = month(bd_r) AND day(bd_l) = day(bd_r) AND (abs(yr_l - yr_r) = 1"
                " OR (levenshtein(CAST(yr_l AS VARCHAR), CAST(yr_r AS VARCHAR)) <= 1"
                f" AND abs(yr_l - yr_r) < {GENERATION}))))",
                "typo",
                "birth",
                "typo",
            ),
            _lvl(
                f"{both_d} AND month(bd_l) = month(bd_r) AND day(bd_l) = day(bd_r)"
                " AND abs(yr_l - yr_r) <= 2",
                "near year",
                "birth",
                "near_year",
            ),
            _lvl(
                f"{both_d} AND {_edits('bd8', 2)} AND abs(yr_l - yr_r) < {GENERATION}",
                "two digits",
                "birth",
                "typo2",
            ),
            _lvl(
                "yr_l = yr_r AND (prec_l = 'M' OR prec_r = 'M') AND prec_l <> 'Y' AND prec_r <> 'Y'"
                " AND month(bd_l) = month(bd_r)",
                "month",
                "birth",
                "month",
            ),
            _lvl("yr_l = yr_r AND (prec_l = 'Y' OR prec_r = 'Y')", "year", "birth", "year"),
            _lvl("TRUE", "else", "birth", "else"),
        ],
        output_column_name="birth",
    )
    sex = cl.CustomComparison(
        [
            _null("sex_l IS NULL OR sex_r IS NULL OR sex_l = 'U' OR sex_r = 'U'"),
            _lvl("sex_l = sex_r", "agree", "sex", "agree"),
            _lvl("TRUE", "else", "sex", "else"),
        ],
        output_column_name="sex",
    )
    commune = cl.CustomComparison(
        [
            _null(
                "(commune_l IS NULL AND commune_old_l IS NULL AND province_l IS NULL)"
                " OR (commune_r IS NULL AND commune_old_r IS NULL AND province_r IS NULL)"
            ),
            _lvl(
                "commune_old_l = commune_old_r OR list_has_any(communes_l, communes_r)",
                "same",
                "commune",
                "same",
            ),
            _lvl("province_l = province_r", "province", "commune", "province"),
            _lvl("TRUE", "else", "commune", "else"),
        ],
        output_column_name="commune",
    )
    cccd = cl.CustomComparison(
        [
            _null("cccd_l IS NULL OR cccd_r IS NULL"),
            _lvl("cccd_l = cccd_r", "same", "cccd", "same"),
            _lvl(_edits("cccd", 1), "typo", "cccd", "typo"),
            _lvl("cccd_ok_l AND cccd_ok_r", "two valid ids", "cccd", "else_valid"),
            _lvl("TRUE", "else", "cccd", "else"),
        ],
        output_column_name="cccd",
    )
    # house numbers agree, also with two digits swapped (address.houses_agree)
    house = "(list_has_any(addr_h_l, addr_h_r) OR list_has_any(addr_hs_l, addr_hs_r))"
    conflict = (
        f"(len(addr_h_l) > 0 AND len(addr_h_r) > 0 AND NOT {house})"
        " OR (len(addr_l_l) > 0 AND len(addr_l_r) > 0 AND NOT list_has_any(addr_l_l, addr_l_r))"
    )
    local = (
        f"({_tokens_agree('s', 's')} OR ({_tokens_agree('s', 'a')} AND {_tokens_agree('a', 's')}))"
    )
    area = _tokens_agree("a", "a")
    address = cl.CustomComparison(
        [
            _null("addr_empty_l OR addr_empty_r"),
            _lvl(conflict, "other dwelling", "address", "else"),
            _lvl(f"{local} AND {house}", "same", "address", "same"),
            _lvl(
                f"{area} AND ({local} OR ({house} AND (len(addr_s_l) = 0 OR len(addr_s_r) = 0)))",
                "street",
                "address",
                "street",
            ),
            _lvl(area, "area", "address", "area"),
            _lvl("TRUE", "else", "address", "else"),
        ],
        output_column_name="address",
    )
    eid = cl.CustomComparison(
        [
            _null("eid_l IS NULL OR eid_r IS NULL"),
            _lvl("eid_l = eid_r", "same", "eid", "same"),
            _lvl(_edits("eid", 1), "typo", "eid", "typo"),
            _lvl("TRUE", "else", "eid", "else"),
        ],
        output_column_name="eid",
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=PRIOR,
        comparisons=[
            name,
            birth,
            sex,
            commune,
            address,
            _simple("phone", "phone"),
            cccd,
            _simple("bhxh", "bhxh"),
            _simple("passport", "passport"),
            _simple("temp_card", "temp_card"),
            eid,
        ],
        blocking_rules_to_generate_predictions=[
            block_on("cccd"),
            block_on("bhxh"),
            block_on("passport"),
            block_on("temp_card"),
            block_on("phone"),
            block_on("name_key", "yr"),
            block_on("name_sorted", "yr"),
            block_on("family", "given", "yr"),
            block_on("given", "bd_full"),
            block_on("family", "bd_full"),
            block_on("name_key", "commune"),
            block_on("eid"),
            block_on("bd_full", "commune"),
            # records without commune codes: the dwelling of the free-text address
            block_on("bd_full", "house"),
            block_on("dwelling"),
            block_on("name_key", "house"),
            # a birth date or a name typed wrong, the street or hamlet written the same
            block_on("name_key", "local"),
            block_on("family", "local", "yr"),
            # a document number with one digit wrong keeps one half ('6398424' / '6388424')
            block_on("doc_tail"),
            # (the first half of a CCCD is province, sex and year: only with the full date)
            block_on("doc_head", "bd_full"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def dwelling_key(f: Features) -> str | None:
    """House number, street or hamlet and province of the address (a blocking key), when the
    address has a house number and a street or hamlet."""
    a = f.address
    if not a or not a.house or not a.local:
        return None
    return f"{min(a.house)}|{min(a.local)}|{f.province or ''}"


def local_key(f: Features) -> str | None:
    """Street or hamlet of the address with the province (a blocking key)."""
    a = f.address
    if not a or not a.local:
        return None
    return f"{min(a.local)}|{f.province or ''}"


def _half(f: Features, *, tail: bool) -> str | None:
    """The last (or first) half of the record's personal or other document number, kind
    first: a one-digit typing error leaves one half whole."""
    for kind, doc in (("c", f.cccd), ("e", f.eid)):
        if doc and len(doc) >= 6:
            cut = len(doc) // 2
            return f"{kind}{len(doc)}:" + (doc[cut:] if tail else doc[:cut])
    return None


FEATURE_BATCH = 65_536  # records turned into Arrow at a time: bounds the Python temporaries


def _feature_columns() -> list[tuple[str, Any, Any]]:
    """(column, Arrow type, value of a record) of the features Splink compares. The types are
    fixed so that batches agree; a column no record fills is all nulls either way."""
    import pyarrow as pa

    s, b, i32, d, ls = pa.string(), pa.bool_(), pa.int32(), pa.date32(), pa.list_(pa.string())

    def addr(kind: str) -> Any:
        return lambda f: sorted(getattr(f.address, kind)) if f.address else []

    def ends(kind: str) -> Any:
        return lambda f: token_ends(getattr(f.address, kind)) if f.address else []

    return [
        ("name_key", s, attrgetter("name_key")),
        ("disp", s, attrgetter("display")),
        ("diac", b, attrgetter("has_diacritics")),
        ("kinh", b, vietnamese_like),
        ("name_sorted", s, attrgetter("name_sorted")),
        ("family", s, attrgetter("family")),
        ("given", s, attrgetter("given")),
        (
            "middle",
            s,
            lambda f: " ".join(f.name_key.split(" ")[1:-1]) or None if f.name_key else None,
        ),
        ("compact", s, lambda f: f.name_key.replace(" ", "") if f.name_key else None),
        ("scompact", s, lambda f: f.name_sorted.replace(" ", "") if f.name_sorted else None),
        ("name_words", ls, lambda f: f.name_key.split(" ") if f.name_key else []),
        ("middle_words", ls, lambda f: f.name_key.split(" ")[1:-1] if f.name_key else []),
        ("n_distinct", i32, lambda f: len(set(f.name_key.split(" "))) if f.name_key else 0),
        ("n_words", i32, lambda f: f.name_key.count(" ") + 1 if f.name_key else 0),
        ("bd", d, attrgetter("birth_date")),
        ("bd_full", d, lambda f: f.birth_date if f.precision == "D" else None),
        ("bd8", s, attrgetter("date_digits")),
        ("yr", i32, lambda f: f.birth_date.year if f.birth_date else None),
        ("prec", s, attrgetter("precision")),
        ("sex", s, attrgetter("sex")),
        ("cccd", s, attrgetter("cccd")),
        ("cccd_ok", b, attrgetter("cccd_ok")),
        ("bhxh", s, attrgetter("bhxh")),
        ("passport", s, attrgetter("passport")),
        ("temp_card", s, attrgetter("temp_card")),
        ("eid", s, attrgetter("eid")),
        ("phone", s, attrgetter("phone")),
        ("commune", s, attrgetter("commune")),
        ("commune_old", s, attrgetter("commune_old")),
        ("province", s, attrgetter("province")),
        ("communes", ls, lambda f: list(f.communes)),
        ("addr_empty", b, lambda f: not f.address),
        ("house", s, lambda f: min(f.address.house) if f.address and f.address.house else None),
        ("dwelling", s, dwelling_key),
        ("local", s, local_key),
        ("doc_tail", s, lambda f: _half(f, tail=True)),
        ("doc_head", s, lambda f: _half(f, tail=False)),
        ("addr_h", ls, addr("house")),
        ("addr_l", ls, addr("lane")),
        ("addr_s", ls, addr("local")),
        ("addr_a", ls, addr("area")),
        ("addr_sx", ls, ends("local")),
        ("addr_ax", ls, ends("area")),
        # house numbers with their digits sorted: '562' and '526' share '256'
        (
            "addr_hs",
            ls,
            lambda f: sorted({"".join(sorted(h)) for h in f.address.house}) if f.address else [],
        ),
    ]


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("unique_id", pa.int64()), *((n, t) for n, t, _ in _feature_columns())])


def feature_batch(part: Sequence[Features], start: int) -> Any:
    """Splink's columns of ``part`` as one Arrow record batch, unique_id counting from
    ``start``; built column by column, so only one column is held as Python objects."""
    import pyarrow as pa

    arrays = [pa.array(range(start, start + len(part)), pa.int64())]
    arrays.extend(pa.array([fn(f) for f in part], typ) for _, typ, fn in _feature_columns())
    return pa.RecordBatch.from_arrays(arrays, schema=_schema())


def features_batches(feats: Sequence[Features], size: int = FEATURE_BATCH) -> Any:
    """The features Splink compares (unique_id = position in the input) as an Arrow record
    batch reader, one batch of ``size`` records built at a time."""
    import pyarrow as pa

    batches = (feature_batch(feats[i : i + size], i) for i in range(0, len(feats), size))
    return pa.RecordBatchReader.from_batches(_schema(), batches)


def features_table(feats: Sequence[Features]) -> Any:
    """Arrow table of the features Splink compares (unique_id = position in the input)."""
    return features_batches(feats).read_all()


def dedup_memory_limit() -> str | None:
    """DuckDB's memory limit for the deduplication (``HSSK_DEDUP_MEMORY_LIMIT``, e.g. '4GB';
    beyond it DuckDB spills to a temporary directory). None: DuckDB's own, 80 % of RAM.
    Splink's blocking joins cannot spill much: too low a limit fails (Out of Memory), it
    never changes a result."""
    return load_settings().dedup_memory_limit


def dedup_chunks(records: int, chunk_records: int | None = None) -> int:
    """How many chunks Splink scores the pairs in: one per ``chunk_records`` records
    (``HSSK_DEDUP_CHUNK_RECORDS``, default 1,000,000). Each chunk joins all records
    with one slice of them, so the blocking joins' hash tables hold one slice at a time; the
    pairs are the same, each scored once, at the cost of reading the records once a chunk."""
    size = chunk_records or load_settings().dedup_chunk_records
    return max(1, -(-records // max(size, 1)))


@dataclass(frozen=True)
class PairArrays:
    """Candidate pairs as two columns of record positions (8 bytes a pair, not a tuple)."""

    left: Any  # numpy int64 array
    right: Any

    def __len__(self) -> int:
        return len(self.left)


def _splink_predict(
    feats: Sequence[Features],
    min_weight: float,
    *,
    threads: int | None,
    memory_limit: str | None,
    columns: str,
    chunks: int = 1,
    batches: list[Any] | None = None,
) -> dict[str, Any]:
    """Splink's predictions above ``min_weight`` as numpy columns (``columns``: SQL list);
    ``batches``: Splink's columns of ``feats`` when already built (``Normalized.columns``)."""
    import duckdb
    import pyarrow as pa

    processes.thread_pools_started("duckdb")
    from splink import Linker
    from splink.backends.duckdb import DuckDBAPI

    with tempfile.TemporaryDirectory(prefix="hssk-dedup-") as tmp:
        # spilled tables and intermediate results go to a directory removed afterwards
        con = duckdb.connect(config={"temp_directory": tmp})
        try:
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            if memory_limit:
                con.execute("SET memory_limit = ?", [memory_limit])
            # streamed batch by batch: the whole Arrow table never exists next to DuckDB's
            con.register(
                "feats_arrow",
                pa.RecordBatchReader.from_batches(_schema(), batches)
                if batches is not None
                else features_batches(feats),
            )
            con.execute("CREATE TABLE mpi_features AS SELECT * FROM feats_arrow")
            con.unregister("feats_arrow")
            api = DuckDBAPI(con)
            linker = Linker(api.register("mpi_features"), splink_settings(), log_level=None)
            pred = linker.inference.predict(
                threshold_match_weight=min_weight,
                warning_mode="never",
                **({"num_chunks_left": 1, "num_chunks_right": chunks} if chunks > 1 else {}),
            )
            out: dict[str, Any] = con.execute(
                f"SELECT {columns} FROM {pred.physical_name}"
            ).fetchnumpy()
        finally:
            con.close()
    return out


def splink_pairs(
    feats: Sequence[Features],
    min_weight: float,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> list[tuple[int, int, float]]:
    """Candidate pairs (i, j, Splink match weight) with weight ≥ ``min_weight``."""
    got = _splink_predict(
        feats,
        min_weight,
        threads=threads,
        memory_limit=memory_limit,
        columns="unique_id_l, unique_id_r, match_weight",
    )
    return [
        (int(a), int(b), float(w))
        for a, b, w in zip(
            got["unique_id_l"].tolist(),
            got["unique_id_r"].tolist(),
            got["match_weight"].tolist(),
            strict=True,
        )
    ]


def splink_pair_arrays(
    feats: Sequence[Features],
    min_weight: float,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    chunks: int = 1,
    batches: list[Any] | None = None,
) -> PairArrays:
    """The pairs of ``splink_pairs`` without their weights, as two numpy columns, scored in
    ``chunks`` chunks (``dedup_chunks``); ``batches`` as in ``_splink_predict``."""
    got = _splink_predict(
        feats,
        min_weight,
        threads=threads,
        memory_limit=memory_limit,
        columns="unique_id_l, unique_id_r",
        chunks=chunks,
        batches=batches,
    )
    return PairArrays(got["unique_id_l"], got["unique_id_r"])


def local_spark(cores: int = 2, memory: str = "2g") -> Any:
    """A local Spark session with Splink's similarity UDF jar (pyspark and Java required)."""
    from pyspark.sql import SparkSession
    from splink.internals.spark.jar_location import similarity_jar_location

    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("hssk-mpi")
        .config("spark.driver.memory", memory)
        .config("spark.sql.shuffle.partitions", str(cores * 2))
        .config("spark.ui.enabled", "false")
        .config("spark.jars", similarity_jar_location())
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_pairs(
    feats: Sequence[Features], min_weight: float, *, spark: Any = None
) -> list[tuple[int, int, float]]:
    """The same candidate pairs as ``splink_pairs``, computed by Splink's Spark backend (the
    path for national scale: the features go through Parquet, as they would on a cluster)."""
    import pyarrow.parquet as pq
    from splink import Linker
    from splink.backends.spark import SparkAPI

    processes.thread_pools_started("spark")
    spark = spark or local_spark()
    with tempfile.TemporaryDirectory(prefix="hssk-mpi-spark-") as tmp:
        path = f"{tmp}/features.parquet"
        pq.write_table(features_table(feats), path)
        spark.sparkContext.setCheckpointDir(f"{tmp}/checkpoints")
        api = SparkAPI(spark_session=spark)
        linker = Linker(
            api.register(spark.read.parquet(path)), splink_settings("spark"), log_level=None
        )
        pred = linker.inference.predict(threshold_match_weight=min_weight, warning_mode="never")
        rows = (
            pred.as_spark_dataframe().select("unique_id_l", "unique_id_r", "match_weight").collect()
        )
    return [(int(a), int(b), float(w)) for a, b, w in rows]


# --- guarded clustering -------------------------------------------------------------------
class _Clusters:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.members: dict[int, list[int]] = {}

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def of(self, root: int) -> list[int]:
        return self.members.get(root, [root])

    def union(self, a: int, b: int) -> None:
        ma, mb = self.of(a), self.of(b)
        if len(ma) < len(mb):
            a, b, ma, mb = b, a, mb, ma
        self.parent[b] = a
        self.members[a] = ma + mb
        self.members.pop(b, None)


def _prob(weight: float) -> float:
    return 1.0 / (1.0 + 2.0 ** (-weight)) if weight > -60 else 0.0


def dedup(
    recs: Sequence[SourceRecord],
    *,
    upper: float | None = None,
    lower: float | None = None,
    threads: int | None = None,
    backend: str = "duckdb",
    spark: Any = None,
    prepared: Sequence[Prepared] | None = None,
    memory_limit: str | None = None,
    chunk_records: int | None = None,
) -> DedupResult:
    """Deduplicate records; returns a cluster id per record (the smallest member index).

    ``backend``: 'duckdb' (default) or 'spark' (Splink's Spark backend; ``spark`` is a session,
    else a local one is started). ``prepared``: ``prepare(rec)`` of each record where already
    computed (ingest normalizes in its mapping processes); without it a large file is
    normalized in ``threads`` processes (default one per core, ``features_of_records``).
    ``memory_limit``: DuckDB's (default ``dedup_memory_limit()``), beyond which it spills to
    disk; ``chunk_records``: records per Splink chunk (``dedup_chunks``). Neither changes a
    decision, only memory and time.
    """
    from hssk.kernel.config import settings

    cfg = settings()
    apply_active(cfg.data_dir)  # the same trained weights as online linking
    upper = cfg.match_upper if upper is None else upper
    lower = cfg.match_lower if lower is None else lower
    stats: dict[str, Any] = {"records": len(recs)}
    t0, c0 = time.perf_counter(), time.process_time()
    if prepared is not None and len(prepared) != len(recs):
        raise ValueError("one prepared record per record")
    normalized = (
        Normalized([features_of(p) for p in prepared])
        if prepared is not None
        else features_of_records(recs, workers=threads)
    )
    feats = normalized.feats
    stats["prepare_s"] = time.perf_counter() - t0
    stats["prepare_cpu_s"] = (c1 := time.process_time()) - c0

    t1 = time.perf_counter()
    # pre-threshold in Splink: generous, since name-frequency adjustment happens afterwards
    min_weight = math.log2(lower / 4 / (1 - lower / 4)) - 8
    pairs: PairArrays | list[tuple[int, int, float]]
    if len(feats) < 2:
        pairs = []
    elif backend == "spark":
        pairs = spark_pairs(feats, min_weight, spark=spark)
    else:
        pairs = splink_pair_arrays(
            feats,
            min_weight,
            threads=threads,
            memory_limit=memory_limit or dedup_memory_limit(),
            chunks=dedup_chunks(len(feats), chunk_records),
            batches=normalized.columns,
        )
    stats["splink_s"] = time.perf_counter() - t1
    stats["splink_cpu_s"] = (c2 := time.process_time()) - c1
    stats["candidate_pairs"] = len(pairs)

    t2 = time.perf_counter()
    counts = Counter(f.name_key for f in feats if f.name_key)
    shares = word_shares(feats)
    prior = file_prior(len(feats))
    # name frequency among records (persons ≈ records / 1.6): the same scale as online linking
    total = max(len(feats), 50_000)
    strong: list[tuple[float, int, int]] = []
    plausible: dict[int, list[tuple[float, int]]] = defaultdict(list)
    rivals: dict[int, list[tuple[float, int]]] = defaultdict(list)
    review: list[tuple[int, int, float]] = []
    for i, j in _pair_positions(pairs):
        a, b = feats[i], feats[j]
        sc = compare(
            a, b, counts.get(a.name_key or "", 1) / total if a.name_key else None, shares, prior
        )
        if sc.veto is None and strong_identifier(a, b):
            strong.append((1e9, i, j))
            continue
        if sc.probability >= upper:
            strong.append((sc.weight, i, j))
        if sc.probability >= lower:
            plausible[i].append((sc.weight, j))
            plausible[j].append((sc.weight, i))
            if sc.probability < upper:
                review.append((i, j, sc.probability))
        elif sc.veto == "given_name_weak" and _prob(sc.weight) >= lower:
            # another name one letter away ('La' / 'Lan' when 'La' / 'Lam' agree): not a
            # match, but a rival that makes the match uncertain (twins 'Lan' and 'Lam')
            rivals[i].append((sc.weight, j))
            rivals[j].append((sc.weight, i))
    stats["rescore_s"] = time.perf_counter() - t2
    stats["rescore_cpu_s"] = (c3 := time.process_time()) - c2

    t3 = time.perf_counter()
    # a strong edge has no veto: its pair need not be compared again while clustering
    n = len(feats)
    cmp = _Comparisons(feats, prior, {i * n + j for w, i, j in strong})
    # A record nearly as close to two records that are not the same person is ambiguous.
    ambiguous: set[int] = set()
    for i, lst in plausible.items():
        if len(lst) + len(rivals.get(i, ())) < 2:
            continue
        lst.sort(reverse=True)
        w0, j0 = lst[0]
        # a rival counts when its name is as close to i's as the best match's is
        near = name_distance(feats[i], feats[j0])
        rival = [(w, j) for w, j in rivals.get(i, []) if name_distance(feats[i], feats[j]) <= near]
        for w1, j1 in sorted(lst[1:] + rival, reverse=True):
            if w0 - w1 >= AMBIGUITY_BITS:
                break
            veto = cmp.veto(j0, j1)
            # two different persons, unless i lies between them: each differs from i by
            # its own typing error (a clean record and two misspellings of it)
            if veto is not None and not explained(cmp, j0, j1, i, veto, upper):
                ambiguous.add(i)
                break
    strong.sort(reverse=True)
    cl = _Clusters(len(feats))
    rejected = 0
    for w, i, j in strong:
        if w < 1e9 and (i in ambiguous or j in ambiguous):
            review.append((i, j, _prob(w)))
            continue
        ri, rj = cl.find(i), cl.find(j)
        if ri == rj:
            continue
        mi, mj = cl.of(ri), cl.of(rj)
        if len(mi) + len(mj) > MAX_CLUSTER or _conflict(cmp, mi, mj, upper):
            rejected += 1
            continue
        cl.union(ri, rj)
    stats["cluster_s"] = time.perf_counter() - t3
    stats["cluster_cpu_s"] = time.process_time() - c3
    stats["rejected_unions"] = rejected
    stats["ambiguous_records"] = len(ambiguous)
    roots = [cl.find(i) for i in range(len(feats))]
    first: dict[int, int] = {}
    for i, r in enumerate(roots):
        first.setdefault(r, i)
    cluster = [first[r] for r in roots]
    review = [(i, j, p) for i, j, p in review if cluster[i] != cluster[j]]
    stats["review_pairs"] = len(review)
    stats["total_s"] = time.perf_counter() - t0
    stats["total_cpu_s"] = time.process_time() - c0
    return DedupResult(cluster, review, stats)


PREPARE_POOL_MIN = 20_000  # records below which starting processes costs more than it saves
PREPARE_CHUNK = 10_000  # records sent to a process at a time


@dataclass(frozen=True)
class Normalized:
    """The features of each record, in order, and, when they were made in processes,
    Splink's columns of them (Arrow record batches, unique_id = position) made alongside."""

    feats: list[Features]
    columns: list[Any] | None = None


def features_of_records(
    recs: Sequence[SourceRecord],
    *,
    workers: int | None = None,
    pool_min: int = PREPARE_POOL_MIN,
    chunk: int = PREPARE_CHUNK,
) -> Normalized:
    """``features_of(prepare(r))`` of each record, in order. From ``pool_min`` records on,
    ``workers`` processes (default: one per core) normalize ``chunk`` records at a time and
    also turn them into Splink's columns (``feature_batch``), which would otherwise be built
    in this process alone after them. ``prepare`` is pure: the features are the same."""
    workers = workers or os.cpu_count() or 1
    if workers < 2 or len(recs) < max(pool_min, 1):
        return Normalized(_features_chunk(recs))
    starts = range(0, len(recs), chunk)
    feats: list[Features] = []
    columns: list[Any] = []
    # no cyclic collection while the results arrive: features hold no cycles, and unpickling
    # a million of them set off collections over the growing heap (31 of 36 µs a record)
    collecting = gc.isenabled()
    gc.disable()
    try:
        if processes.start_method() == "fork":
            # the children start with the records and the commune tables loaded (a chunk is
            # sent as its bounds, not pickled) and need no importable __main__; they only
            # normalize, and the pool is gone before DuckDB starts its threads.
            # gc.freeze: a child's garbage collector then leaves the caller's objects (the
            # records) alone instead of touching, and so copying, every page of them.
            _FORKED[:] = [recs]
            gc.freeze()
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
                for part, batch in pool.map(_chunk_in_child, starts, repeat(chunk)):
                    feats.extend(part)
                    columns.append(batch)
        else:  # threads left by an earlier run (DuckDB, Arrow): fresh children, chunks sent
            with ProcessPoolExecutor(workers, mp_context=get_context("forkserver")) as pool:
                parts = (recs[i : i + chunk] for i in starts)
                for part, batch in pool.map(_features_and_columns, parts, starts):
                    feats.extend(part)
                    columns.append(batch)
        return Normalized(feats, columns)
    finally:
        if collecting:
            gc.enable()
        gc.unfreeze()
        _FORKED.clear()


_FORKED: list[Sequence[SourceRecord]] = []  # the records a forked child reads its chunk from


def _chunk_in_child(start: int, size: int) -> tuple[list[Features], Any]:
    return _features_and_columns(_FORKED[0][start : start + size], start)


def _features_and_columns(recs: Sequence[SourceRecord], start: int) -> tuple[list[Features], Any]:
    part = _features_chunk(recs)
    return part, feature_batch(part, start)


def _features_chunk(recs: Sequence[SourceRecord]) -> list[Features]:
    return [features_of(prepare(r)) for r in recs]


def _pair_positions(pairs: PairArrays | list[tuple[int, int, float]]) -> Iterator[tuple[int, int]]:
    """(i, j) of each candidate pair, in Splink's order; numpy columns are turned into Python
    integers a slice at a time."""
    if isinstance(pairs, list):
        for i, j, _w in pairs:
            yield i, j
        return
    for start in range(0, len(pairs), FEATURE_BATCH):
        end = start + FEATURE_BATCH
        yield from zip(pairs.left[start:end].tolist(), pairs.right[start:end].tolist(), strict=True)


PRIOR_SMALL_FILE = 1e-4  # the match probability of a random pair in a file of 10,000 records


def file_prior(records: int) -> float:
    """Probability that two random records of a file are one person: about 1 / records when
    persons have two records or so (``PRIOR`` is that of a 100,000-record file). Smaller
    files are capped at ``PRIOR_SMALL_FILE``, larger ones keep ``PRIOR``."""
    return min(max(1.0 / max(records, 1), PRIOR), PRIOR_SMALL_FILE)


WORD_SHARE_MIN_RECORDS = 2_000  # fewer records say too little about how common a word is


def word_shares(feats: Sequence[Features]) -> dict[str, float] | None:
    """Share of the records whose name holds each word (None for a small file)."""
    named = [f.name_key for f in feats if f.name_key]
    if len(named) < WORD_SHARE_MIN_RECORDS:
        return None
    words = Counter(w for key in named for w in set(key.split(" ")))
    return {w: n / len(named) for w, n in words.items()}


@dataclass(frozen=True, slots=True)
class _Compared:
    """What clustering reads of ``compare`` (with the file's prior) for one ordered pair."""

    veto: str | None
    probability: float
    birth: str | None


class _Comparisons:
    """``compare`` of two records by position with the file's prior, each ordered pair once:
    clustering asks for the same pairs again as clusters grow. ``no_veto`` holds the pairs
    ``i * records + j`` already scored without a veto (the strong edges). A veto does not
    depend on the weights, the prior or the name frequencies, so the cached one is the
    veto of any ``compare`` of the pair."""

    def __init__(self, feats: Sequence[Features], prior: float, no_veto: set[int]) -> None:
        self.feats, self.prior, self.no_veto = feats, prior, no_veto
        self.n = len(feats)
        self.done: dict[int, _Compared] = {}

    def score(self, i: int, j: int) -> _Compared:
        key = i * self.n + j
        got = self.done.get(key)
        if got is None:
            sc = compare(self.feats[i], self.feats[j], prior=self.prior)
            got = self.done[key] = _Compared(sc.veto, sc.probability, sc.levels.get("birth"))
        return got

    def veto(self, i: int, j: int) -> str | None:
        if i * self.n + j in self.no_veto:
            return None
        return self.score(i, j).veto

    def name_distance(self, i: int, j: int) -> int:
        return name_distance(self.feats[i], self.feats[j])


def _conflict(cmp: _Comparisons, a: list[int], b: list[int], upper: float) -> bool:
    """True when some member of ``a`` and some member of ``b`` cannot be the same person:
    they veto each other and no member of either cluster explains the difference as two
    typing errors, one on each side."""
    for i in a:
        for j in b:
            veto = cmp.veto(i, j)
            if veto is None or veto == "given_name_weak":  # a one-letter name typo may join
                continue
            if not any(explained(cmp, i, j, z, veto, upper) for z in (*a, *b) if z not in (i, j)):
                return True
    return False


_SOFT_VETOES = frozenset(("given_name", "given_name_weak", "birth_date", "birth_year"))


def explained(cmp: _Comparisons, x: int, y: int, z: int, veto: str, upper: float) -> bool:
    """Whether record ``z`` explains the veto between ``x`` and ``y`` as two independent
    typing errors: z is the same person as each (no veto, probability ≥ upper) and lies
    between them — for names, the edits x→z and z→y add up to the edits x→y (a clean name
    and two misspellings of it, not a name equally close to two twins' names); for birth
    dates, each date is a typing error of z's full date (not a year-only record). Only the
    vetoes a typing error can cause are explained; different identifiers never are."""
    if veto not in _SOFT_VETOES:
        return False
    sx, sy = cmp.score(x, z), cmp.score(z, y)
    if sx.veto or sy.veto or sx.probability < upper or sy.probability < upper:
        return False
    if veto.startswith("given_name"):
        dx, dy = cmp.name_distance(x, z), cmp.name_distance(z, y)
        return dx + dy == cmp.name_distance(x, y)
    return sx.birth in _BIRTH_TYPO and sy.birth in _BIRTH_TYPO


_BIRTH_TYPO = frozenset(("exact", "swap", "typo", "year_typo", "near_year", "typo2", "slip"))
