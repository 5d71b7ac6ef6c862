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


Pattern = tuple[tuple[str, str], ...]  # a comparison vector: (field, level) pairs, sorted


def patterns(vectors: Sequence[dict[str, str]]) -> Counter[Pattern]:
    """How many pairs share each comparison vector: EM's cost is then that of the distinct
    vectors (a few thousand), not of the pairs (hundreds of thousands)."""
    return Counter(tuple(sorted(v.items())) for v in vectors)


def estimate_m(
    vectors: Sequence[dict[str, str]] | Counter[Pattern],
    start: Levels,
    *,
    iterations: int = 500,
    tolerance: float = 1e-6,
    share: float | None = None,
) -> tuple[Levels, float, int]:
    """EM over comparison vectors with u fixed: (levels, share of matches among the vectors,
    iterations run). Stops when no m and not the share moves by more than ``tolerance``.
    ``share`` starts the match share (default: the share the starting weights call a match)."""
    counts = vectors if isinstance(vectors, Counter) else patterns(vectors)
    items = list(counts.items())
    n = sum(c for _, c in items) or 1
    levels = {f: dict(v) for f, v in start.items()}

    def odds(pat: Pattern) -> float:
        return sum(math.log(levels[f][lv][0] / levels[f][lv][1]) for f, lv in pat)

    if share is None:
        logit_prior = math.log(model.PRIOR / (1 - model.PRIOR))
        matched = sum(c for pat, c in items if logit_prior + odds(pat) > 0)
        share = min(max(matched / n, 1e-4), 0.5)
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 - the count is returned
        logit0 = math.log(share / (1 - share))
        sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        total_p = 0.0
        for pat, c in items:
            w = logit0 + odds(pat)
            p = c / (1.0 + math.exp(-w)) if w > -60 else 0.0
            total_p += p
            for f, lv in pat:
                sums[f][lv] += p
        new_share = min(max(total_p / n, 1e-6), 1 - 1e-6)
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
        if change < tolerance:
            break
    return levels, share, done


def train(
    feats: Sequence[Features],
    *,
    iterations: int = 500,
    random_pairs: int = 100_000,
    seed: int = 1,
) -> Trained:
    """Train m and u on the features of a deployment's records.

    EM runs over the blocked candidate pairs together with the random pairs: when blocking is
    tight nearly every candidate pair is a match, and EM over those alone drifts to calling
    every pair a match (the m of disagreement levels then grows without bound). Pairs a veto
    decides (twins, namesakes, father and son, two valid CCCDs) are left out: the weights
    never judge them, and counting them as possible matches taught EM that a different
    birth date or CCCD is common among matches."""
    from hssk.registry.dedup import splink_pairs

    prior = {f: dict(v) for f, v in DEFAULT_LEVELS.items()}
    randoms = random_vectors(feats, pairs=random_pairs, seed=seed)
    u_levels = estimate_u(randoms, prior)
    pairs = splink_pairs(feats, -40.0) if len(feats) > 1 else []
    vectors = []
    for i, j, _ in pairs:
        sc = compare(feats[i], feats[j])
        if sc.veto is None:
            vectors.append(sc.levels)
    levels, share, done = estimate_m(
        patterns(vectors) + patterns(randoms), u_levels, iterations=iterations
    )
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
