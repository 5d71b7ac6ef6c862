"""Learned m and u probabilities: EM on a deployment's own records (``hssk mpi train``).

u (agreement among non-matches) is estimated from random record pairs, which are almost all
non-matches; m (agreement among matches) by expectation–maximisation over the candidate pairs
of the blocking rules, with u held fixed, as Splink and fastLink do. The hand-set values of
``model.LEVELS`` are the prior (pseudo-counts), so a level rare in the data keeps about its
prior value. The result is versioned configuration: a JSON file per training in
``<data dir>/mpi/``; ``activate`` makes one the weights that online linking and batch
deduplication both use (``apply_active`` reads it).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hssk.registry import model
from hssk.registry.model import Features, compare

Levels = dict[str, dict[str, tuple[float, float]]]

DEFAULT_LEVELS: Levels = {f: dict(v) for f, v in model.LEVELS.items()}  # hand-set prior
PRIOR_STRENGTH_M = 50.0  # pseudo-pairs of the prior per field in the m estimate
FLOOR = 1e-9


@dataclass
class Trained:
    """Trained m/u per field and level, with what it was trained on."""

    version: str
    records: int
    candidate_pairs: int
    random_pairs: int
    match_share: float  # estimated share of matches among the candidate and random pairs
    iterations: int
    levels: Levels

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "records": self.records,
            "candidate_pairs": self.candidate_pairs,
            "random_pairs": self.random_pairs,
            "match_share": self.match_share,
            "iterations": self.iterations,
            "levels": {f: {lv: list(mu) for lv, mu in v.items()} for f, v in self.levels.items()},
        }


def random_vectors(
    feats: Sequence[Features], *, pairs: int = 100_000, seed: int = 1
) -> list[dict[str, str]]:
    """Comparison vectors of random record pairs, without the pairs the hand-set model already
    calls a match: in a register where most persons have two or three records, one random
    pair in a few thousand is the same person, and counting those as non-matches would make
    agreement on an identifier look common by chance."""
    rng = random.Random(seed)
    n = len(feats)
    out: list[dict[str, str]] = []
    for _ in range(pairs if n > 1 else 0):
        i, j = rng.randrange(n), rng.randrange(n)
        if i == j:
            continue
        sc = compare(feats[i], feats[j])
        if sc.probability < 0.5:
            out.append(sc.levels)
    return out


def estimate_u(vectors: Sequence[dict[str, str]], prior: Levels) -> Levels:
    """u per level from random pairs' vectors, smoothed toward the prior (as many pseudo-pairs
    as pairs seen, so a level never seen among random pairs keeps half its prior u)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for vec in vectors:
        for fld, lvl in vec.items():
            counts[fld][lvl] += 1
    out: Levels = {}
    for fld, lv in prior.items():
        seen = sum(counts[fld].values())
        out[fld] = {
            name: (m, max((counts[fld][name] + seen * u) / (2 * seen), FLOOR) if seen else u)
            for name, (m, u) in lv.items()
        }
    return out


def estimate_m(
    vectors: Sequence[dict[str, str]], start: Levels, *, iterations: int = 20
) -> tuple[Levels, float, int]:
    """EM over comparison vectors with u fixed: (levels, share of matches among the vectors,
    iterations run)."""
    levels = {f: dict(v) for f, v in start.items()}
    share = 0.1
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 - the count is returned
        logit0 = math.log(share / (1 - share))
        posts = []
        for vec in vectors:
            w = logit0 + sum(math.log(levels[f][lv][0] / levels[f][lv][1]) for f, lv in vec.items())
            posts.append(1.0 / (1.0 + math.exp(-w)) if w > -60 else 0.0)
        new_share = min(max(sum(posts) / max(len(posts), 1), 1e-6), 1 - 1e-6)
        sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for p, vec in zip(posts, vectors, strict=True):
            for f, lv in vec.items():
                sums[f][lv] += p
        change = abs(new_share - share)
        for f, lv_map in levels.items():
            total = sum(sums[f].values())
            for name, (m, u) in lv_map.items():
                m0 = DEFAULT_LEVELS[f][name][0]
                new_m = (sums[f].get(name, 0.0) + PRIOR_STRENGTH_M * m0) / (
                    total + PRIOR_STRENGTH_M
                )
                change = max(change, abs(new_m - m))
                lv_map[name] = (max(new_m, FLOOR), u)
        share = new_share
        if change < 1e-4:
            break
    return levels, share, done


def train(
    feats: Sequence[Features],
    *,
    iterations: int = 20,
    random_pairs: int = 100_000,
    seed: int = 1,
) -> Trained:
    """Train m and u on the features of a deployment's records.

    EM runs over the blocked candidate pairs together with the random pairs: when blocking is
    tight nearly every candidate pair is a match, and EM over those alone drifts to calling
    every pair a match (the m of disagreement levels then grows without bound)."""
    from hssk.registry.dedup import splink_pairs

    prior = {f: dict(v) for f, v in DEFAULT_LEVELS.items()}
    randoms = random_vectors(feats, pairs=random_pairs, seed=seed)
    u_levels = estimate_u(randoms, prior)
    pairs = splink_pairs(feats, -40.0) if len(feats) > 1 else []
    vectors = [compare(feats[i], feats[j]).levels for i, j, _ in pairs]
    levels, share, done = estimate_m(vectors + randoms, u_levels, iterations=iterations)
    version = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Trained(version, len(feats), len(pairs), len(randoms), share, done, levels)


def changes(trained: Levels, base: Levels | None = None) -> list[tuple[str, str, float, float]]:
    """(field, level, weight before, weight after) of every level, in bits."""
    base = base or DEFAULT_LEVELS
    out = []
    for f, lv in trained.items():
        for name, (m, u) in lv.items():
            m0, u0 = base[f][name]
            out.append((f, name, math.log2(m0 / u0), math.log2(m / u)))
    return out


def weights_dir(data_dir: Path) -> Path:
    return data_dir / "mpi"


def save(trained: Trained, data_dir: Path) -> Path:
    """Write the trained weights as ``<data dir>/mpi/weights-<version>.json``."""
    d = weights_dir(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"weights-{trained.version}.json"
    path.write_text(json.dumps(trained.to_json(), indent=1, ensure_ascii=False), "utf-8")
    return path


def activate(path: Path, data_dir: Path) -> Path:
    """Make a saved training the active weights (``<data dir>/mpi/active.json``)."""
    target = weights_dir(data_dir) / "active.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return target


def read_levels(path: Path) -> Levels:
    """Levels of a saved training; only fields and levels the model knows are taken."""
    raw = json.loads(path.read_text("utf-8"))["levels"]
    out: Levels = {}
    for f, lv in DEFAULT_LEVELS.items():
        out[f] = {
            name: (float(raw[f][name][0]), float(raw[f][name][1]))
            if f in raw and name in raw[f]
            else mu
            for name, mu in lv.items()
        }
    return out


_ACTIVE: dict[str, Any] = {"key": None}


def apply_active(data_dir: Path) -> str | None:
    """Use the active trained weights of this installation, if any (else the hand-set ones);
    returns the version in use. Cheap when nothing changed (one stat)."""
    path = weights_dir(data_dir) / "active.json"
    try:
        key: Any = (str(path), path.stat().st_mtime_ns)
    except OSError:
        key = None
    if key == _ACTIVE["key"]:
        return _ACTIVE.get("version")
    levels = read_levels(path) if key else DEFAULT_LEVELS
    for f, lv in levels.items():
        model.LEVELS[f] = dict(lv)
    _ACTIVE["key"] = key
    _ACTIVE["version"] = json.loads(path.read_text("utf-8"))["version"] if key else None
    return _ACTIVE["version"]
