"""The batch deduplication's memory handling changes no decision: on a fixed synthetic set
(duplicates with typing errors, twins, namesakes and the generator's other hard negatives)
its cluster ids, review pairs and counts equal those the code gave before the change.

``data/dedup_reference.json`` was written by this module's ``__main__``
(``PYTHONPATH=. python -m tests.registry.test_dedup_memory``) run on the deduplication as it
was before its memory handling changed (commit b40b8e4), with the hand-set weights (no
trained weights active). Regenerate it only for a deliberate change of decisions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from hssk.registry.dedup import dedup, features_of_records, features_table
from hssk.registry.link import features_of
from hssk.registry.prepare import prepare
from tests.factories.linkage import generate

REFERENCE = Path(__file__).with_name("data") / "dedup_reference.json"
RECORDS, SEED = 3000, 29


def decisions(chunk_records: int | None = None) -> dict[str, Any]:
    """What ``dedup`` decides on the fixed set, called as the first load calls it."""
    recs, _ = generate(RECORDS, seed=SEED)
    res = dedup(recs, prepared=[prepare(r) for r in recs], chunk_records=chunk_records)
    return {
        "records": len(recs),
        "cluster": res.cluster,
        # Splink returns pairs in no fixed order; the decisions do not depend on it
        "review_pairs": sorted([i, j, p] for i, j, p in res.review_pairs),
        "counts": {
            k: res.stats[k]
            for k in ("candidate_pairs", "rejected_unions", "ambiguous_records", "review_pairs")
        },
    }


@pytest.mark.parametrize("chunk_records", [None, 1000], ids=["one chunk", "three chunks"])
def test_dedup_decisions_unchanged(chunk_records: int | None) -> None:
    """Also when Splink scores the pairs in chunks (each pair once, in another order)."""
    expected = json.loads(REFERENCE.read_text("utf-8"))
    got = decisions(chunk_records)
    assert got["records"] == expected["records"]
    assert got["counts"] == expected["counts"]
    assert got["cluster"] == expected["cluster"]
    assert got["review_pairs"] == expected["review_pairs"]
    # the set is not trivial: it has duplicates and pairs left for review
    assert len(set(got["cluster"])) < 0.8 * len(got["cluster"])
    assert expected["review_pairs"]


def test_features_in_processes_equal_features_in_order() -> None:
    """A large file is normalized in processes: the features, in input order, are those of
    normalizing record by record (here three chunks of 200 in two processes), and Splink's
    columns made alongside are those made from them here."""
    recs, _ = generate(600, seed=SEED)
    expected = [features_of(prepare(r)) for r in recs]
    got = features_of_records(recs, workers=2, pool_min=0, chunk=200)
    assert got.feats == expected
    assert len({f.name_key for f in got.feats}) > 100  # real, varied records
    assert got.columns is not None and len(got.columns) == 3
    made_here = features_table(expected)
    assert pa.Table.from_batches(got.columns).equals(made_here)
    assert made_here.column("unique_id").to_pylist() == list(range(600))


if __name__ == "__main__":
    REFERENCE.write_text(json.dumps(decisions(), separators=(",", ":")) + "\n", "utf-8")
