"""Learned weights: EM on a deployment's records, saved as a version, activated for both paths."""

from __future__ import annotations

from pathlib import Path

from hssk.registry import model
from hssk.registry import train as tr
from hssk.registry.link import features_of
from hssk.registry.prepare import prepare
from tests.factories.linkage import generate


def test_train_save_activate_and_back(tmp_path: Path) -> None:
    recs, _ = generate(1500, seed=4)
    result = tr.train([features_of(prepare(r)) for r in recs], random_pairs=5000)
    assert result.candidate_pairs > 100 and 0 < result.match_share < 1
    assert result.iterations < 500  # EM converged (tolerance reached before the cap)
    assert set(result.levels) == set(tr.DEFAULT_LEVELS)
    for fld, lv in result.levels.items():
        assert set(lv) == set(tr.DEFAULT_LEVELS[fld])
        assert all(0 < m <= 1 and 0 < u <= 1 for m, u in lv.values())
    # agreement on a personal id stays strong evidence, disagreement on the birth date negative
    after = {(f, lvl): w for f, lvl, _, w in tr.changes(result.levels)}
    assert after[("cccd", "same")] > 8 and after[("birth", "else")] < 0

    path = tr.save(result, tmp_path)
    assert path.name == f"weights-{result.version}.json"
    assert tr.apply_active(tmp_path) is None  # nothing active yet: hand-set weights
    tr.activate(path, tmp_path)
    try:
        assert tr.apply_active(tmp_path) == result.version
        assert model.LEVELS["name"]["exact"] == result.levels["name"]["exact"]
    finally:
        (tmp_path / "mpi" / "active.json").unlink()
        assert tr.apply_active(tmp_path) is None
    assert model.LEVELS == tr.DEFAULT_LEVELS
