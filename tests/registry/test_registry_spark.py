"""Splink's Spark backend runs the same model (the path for national scale)."""

from __future__ import annotations

import shutil

import pytest

from benchmarks.registry import pairwise_scores
from hssk.registry.dedup import dedup, local_spark, spark_pairs, splink_pairs
from hssk.registry.link import features_of
from hssk.registry.prepare import prepare
from tests.factories.linkage import generate

pytest.importorskip("pyspark", reason="pyspark is an optional dependency (national-scale backend)")
if shutil.which("java") is None:
    pytest.skip("Spark needs a Java runtime", allow_module_level=True)


def test_spark_backend_scores_like_duckdb() -> None:
    recs, truth = generate(800, seed=21)
    feats = [features_of(prepare(r)) for r in recs]
    spark = local_spark(cores=2, memory="1g")
    try:
        on_spark = {(a, b): w for a, b, w in spark_pairs(feats, -20, spark=spark)}
        res = dedup(recs, backend="spark", spark=spark)
    finally:
        spark.stop()  # free the JVM for the rest of the suite
    on_duck = {(a, b): w for a, b, w in splink_pairs(feats, -20)}
    assert set(on_spark) == set(on_duck) and len(on_duck) > 150
    assert max(abs(on_spark[k] - on_duck[k]) for k in on_duck) < 1e-6
    assert res.cluster == dedup(recs).cluster
    assert pairwise_scores(res.cluster, truth)["precision"] >= 0.985
