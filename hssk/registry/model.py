"""Fellegi–Sunter comparison model shared by online linking and batch deduplication.

Each field comparison yields a level; each level has an m probability (agreement among true
matches) and a u probability (among non-matches). The match weight is the sum of
log2(m/u) over the fields present plus the log2 prior odds, and the match probability is
2^W / (1 + 2^W). The same table feeds the Splink settings of the batch path (dedup.py), so
both paths score a pair identically.

Beyond the weights, a few *vetoes* encode what is truly contradictory: two different valid
personal ids (unless another verified id agrees and two keystrokes explain them), two
different temporary cards (twins), given names that are different names (twins), two full
birth dates that differ beyond a typing error (father and son with the same name,
namesakes). What a typing error explains is a level with its own weight instead: a CCCD one
edit off, day and month swapped, a year off by one or two, a name one or two edits off in
either word order or with its spaces elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from hssk.kernel import identifiers as ids
from hssk.registry.address import AddressKey, compare_address

PRIOR = 1e-5  # probability that two random records are the same person (blocked comparisons)
PRIOR_WEIGHT = math.log2(PRIOR / (1 - PRIOR))
WORD_SHARE_FLOOR = 0.001  # a shared word rarer than this says no more than this
GENERATION = 15  # birth years this far apart are two persons even if one digit explains it

# field → level → (m, u). Levels are listed strongest first; a missing value scores 0.
LEVELS: dict[str, dict[str, tuple[float, float]]] = {
    "name": {
        "exact": (0.75, 0.0003),  # same folded key and same diacritics
        "exact_folded": (0.15, 0.0006),  # same folded key (one side typed without diacritics)
        "reordered": (0.02, 0.00005),  # same words in another order
        "family_given": (0.03, 0.001),  # middle name missing on one side
        "spacing": (0.01, 0.00005),  # the same letters, spaces elsewhere ('Th ịVân')
        "fuzzy": (0.04, 0.002),  # one edit, or Jaro–Winkler ≥ 0.92 on the key: a typing error
        "reordered_fuzzy": (0.015, 0.0002),  # another word order and one edit
        "middle_differs": (0.005, 0.002),  # same family and given, different middle names
        "partial": (0.004, 0.002),  # one side is a single word of the other ('Elton Smith')
        "given": (0.001, 0.03),  # family names do not change: another family is another person
        "fuzzy2": (0.006, 0.004),  # two edits over the whole name, in either word order
        # one word in common, the rest another name: most random pairs of Vietnamese names
        # share a family or middle name, so this is barely evidence (trained weights say more)
        "word": (0.002, 0.3),
        "else": (0.002, 0.6586),
    },
    "birth": {
        "exact": (0.84, 0.00004),
        "month": (0.03, 0.002),  # same year and month, one side has month precision
        "year": (0.03, 0.02),  # same year, one side has year precision
        "swap": (0.02, 0.00004),  # day and month swapped
        # One of y/m/d differs by one digit: weak, since namesakes born weeks apart are common.
        # namesakes born days apart in one commune are as common as typing slips: not evidence
        "typo": (0.03, 0.06),
        # the year one off or one digit wrong, day and month equal: same day and month by
        # chance is 1 in 365, and a year ±1 among those 1 in ~40
        "year_typo": (0.04, 0.0004),
        "near_year": (0.012, 0.002),  # same day and month, the year off by two
        "typo2": (0.005, 0.01),  # two digits of the full date differ
        # a date made impossible by a slip ('19505309'), within two digits of the other
        "slip": (0.01, 0.0005),
        "else": (0.005, 0.93792),
    },
    "sex": {"agree": (0.97, 0.5), "else": (0.03, 0.5)},
    "commune": {
        "same": (0.75, 0.005),  # communes are few per province: agreement is common by chance
        "province": (0.12, 0.05),
        "else": (0.13, 0.948),
    },
    "phone": {"same": (0.45, 0.0005), "else": (0.55, 0.9995)},
    # free-text address (address.py): a dwelling shared by chance is rare, a ward is not
    "address": {
        "same": (0.55, 0.0002),  # house number and street or hamlet
        "street": (0.15, 0.004),  # street or hamlet and ward, no conflicting house number
        "area": (0.1, 0.07),  # a ward or district name (mostly what the commune code says)
        "else": (0.2, 0.9258),  # another dwelling: people move
    },
    "cccd": {
        "same": (0.9, 1e-7),
        "typo": (0.05, 1e-5),
        "else_valid": (0.01, 0.99),
        "else": (0.04, 0.99),
    },
    "bhxh": {"same": (0.9, 1e-7), "else": (0.1, 0.9999999)},
    "passport": {"same": (0.9, 1e-7), "else": (0.1, 0.9999999)},
    "temp_card": {"same": (0.9, 1e-7), "else": (0.1, 0.9999999)},
    "mother": {"same": (0.5, 0.0001), "else": (0.02, 0.9999)},
    # another document number (foreign id, old card, social-security number): unverified
    "eid": {"same": (0.85, 1e-6), "typo": (0.08, 1e-4), "else": (0.07, 0.999899)},
}


def level_weight(fld: str, level: str) -> float:
    m, u = LEVELS[fld][level]
    return math.log2(m / u)


@dataclass(slots=True)
class Features:
    """The normalized fields a comparison looks at (from a source record or a person)."""

    name_key: str | None = None
    display: str | None = None  # canonical name with diacritics, lower case
    family: str | None = None
    given: str | None = None
    name_sorted: str | None = None
    birth_date: date | None = None
    precision: str | None = None
    birth_digits: str | None = None  # yyyymmdd of an impossible full date ('19505309')
    sex: str | None = None
    cccd: str | None = None
    cccd_ok: bool = False
    bhxh: str | None = None
    passport: str | None = None
    eid: str | None = None
    temp_card: str | None = None
    phone: str | None = None
    commune: str | None = None
    commune_old: str | None = None
    province: str | None = None
    mother_id: int | None = None
    communes: tuple[str, ...] = ()  # every 2025 commune the record may be in
    address: AddressKey | None = None  # tokens of the free-text address

    @property
    def date_digits(self) -> str | None:
        """yyyymmdd of the full birth date as written, possible or not."""
        if self.birth_date is not None and self.precision in (None, "D"):
            return self.birth_date.strftime("%Y%m%d")
        return self.birth_digits

    @property
    def has_diacritics(self) -> bool:
        return bool(self.display) and self.display != self.name_key


def cccd_valid(cccd: str | None, birth: date | None, sex: str | None) -> bool:
    if not cccd:
        return False
    return ids.check_cccd(cccd, birth_year=birth.year if birth else None, sex=sex).ok


def known_given_names() -> frozenset[str]:
    """Folded given names seen in the name lists (to tell 'Lan'/'Lam' from the typo 'Sng')."""
    from hssk.registry.normalize import known_given_keys

    return known_given_keys()


def _compact(key: str | None) -> str:
    """A name key without spaces: 'th ivan' and 'thi van' are the same letters."""
    return (key or "").replace(" ", "")


def name_distance(a: Features, b: Features) -> int:
    """Edits between two names' letters, spaces ignored, in written or in sorted word order,
    or word by word in any order (a name written in another order with a typo is one edit
    away)."""
    return min(
        OSA.distance(_compact(a.name_key), _compact(b.name_key)),
        OSA.distance(_compact(a.name_sorted), _compact(b.name_sorted)),
        _word_edits(a.name_key, b.name_key),
    )


def _word_edits(ka: str | None, kb: str | None) -> int:
    """Edits between the words of two names of as many words, paired in the best order
    ('cong thanh to' / 'ta cong thanh': 1); 99 when the word counts differ or exceed 5."""
    per_word = _edits_per_word(ka, kb)
    return 99 if per_word is None else sum(per_word)


def _edits_per_word(ka: str | None, kb: str | None) -> list[int] | None:
    """Edits of each differing word, words paired in the order that needs fewest edits; None
    when the word counts differ, exceed 5, or more than three words differ."""
    wa, wb = (ka or "").split(" "), (kb or "").split(" ")
    if len(wa) != len(wb) or len(wa) > 5:
        return None
    rest_a = list(wa)
    rest_b = []
    for w in wb:
        if w in rest_a:
            rest_a.remove(w)
        else:
            rest_b.append(w)
    if len(rest_a) > 3:
        return None
    from itertools import permutations

    return min(
        (
            [OSA.distance(x, y) for x, y in zip(rest_a, perm, strict=True)]
            for perm in permutations(rest_b)
        ),
        key=sum,
        default=[],
    )


def _one_word_of(a: Features, b: Features) -> bool:
    """One side is a single word found in the other ('Elton' / 'Elton Smith')."""
    ka, kb = a.name_key or "", b.name_key or ""
    return (" " not in ka and ka in kb.split(" ")) or (" " not in kb and kb in ka.split(" "))


def vietnamese_name(f: Features) -> bool:
    """The name follows the Kinh pattern: a known family name first and a known given name
    last. Other names (foreign residents, many ethnic-minority names) are compared without
    the given-name list."""
    from hssk.registry.normalize import FAMILY_KEYS

    return bool(f.family) and f.family in FAMILY_KEYS and f.given in known_given_names()


def vietnamese_like(f: Features) -> bool:
    """The name has a known family name or a known given name: it may be a Kinh name, maybe
    mistyped ('Laam Minh Dong'), whose folded form stands for several names."""
    from hssk.registry.normalize import FAMILY_KEYS

    return (bool(f.family) and f.family in FAMILY_KEYS) or f.given in known_given_names()


def given_conflict(a: Features, b: Features) -> str | None:
    """'strong' for clearly different given names ('An'/'Bình'), 'weak' for a difference a
    typing error may explain but that may be two names ('Lan'/'Lam', 'An'/'Anh', or two edits
    over the whole name), None when they agree or one is a typing error of the other ('Sang'/
    'Sng', 'Th ịVân', 'Vân Nguyễn Thị' with a typo)."""
    if not a.given or not b.given or a.name_key == b.name_key:
        return None
    # Outside the Kinh pattern the last word need not be the given name ('H'Đum Ksơr': the
    # family name is last), so the whole name is compared, not the last words.
    foreign = not (vietnamese_name(a) and vietnamese_name(b))
    if a.given == b.given and not foreign:
        return None
    if a.name_sorted and a.name_sorted == b.name_sorted:
        return None  # the same words in another order: family name written last
    if a.name_key and b.name_key and _word_subset(a.name_key.split(" "), b.name_key.split(" ")):
        return None  # the same words in another order, maybe one missing: 'Đoàn Tiến'
    if _one_word_of(a, b):
        return None  # a single word of the other name (one part of the name missing)
    dist = name_distance(a, b)
    if dist == 0:
        return None  # the same letters with spaces elsewhere
    if foreign:
        # outside the Vietnamese vocabulary: letters and word order decide, not the name list.
        # One slip in each of two long words ('hanmah gluc') is typing; twins share the
        # family name and differ in one word (short words one letter apart are other names).
        # A short word one letter from another is another name ('Ún' / 'Ỉn': twins).
        per_word = _edits_per_word(a.name_key, b.name_key) or []
        differing = set((a.name_key or "").split(" ")) ^ set((b.name_key or "").split(" "))
        long_words = min(map(len, differing), default=0) >= 4
        if long_words and (dist <= 1 or (len(per_word) >= 2 and max(per_word) <= 1)):
            return None
        if dist <= 1:
            # one side in the Kinh pattern: the other is its typo ('Hùng' / 'Ùng')
            return "weak" if not (vietnamese_name(a) or vietnamese_name(b)) else None
        return "weak" if dist <= 2 else "strong"
    given_edits = OSA.distance(a.given, b.given)
    if given_edits <= 1:
        known = known_given_names()
        return "weak" if a.given in known and b.given in known else None
    if dist <= 1:
        return None  # one letter elsewhere explains it (another order, a space moved)
    return "weak" if dist <= 2 else "strong"


def compare_birth(a: Features, b: Features) -> str | None:
    if a.birth_date is None or b.birth_date is None:
        # a date made impossible by a typing error ('19505309') against the date meant
        ta, tb = a.date_digits, b.date_digits
        if ta and tb:
            return "slip" if OSA.distance(ta, tb) <= 2 else None
        return None
    da, db = a.birth_date, b.birth_date
    pa, pb = a.precision or "D", b.precision or "D"
    if pa == "D" and pb == "D":
        if da == db:
            return "exact"
        if da.year == db.year and da.month == db.day and da.day == db.month:
            return "swap"
        diffs = [
            (k, x, y)
            for k, x, y in (
                ("y", da.year, db.year),
                ("m", da.month, db.month),
                ("d", da.day, db.day),
            )
            if x != y
        ]
        if len(diffs) == 1:
            k, x, y = diffs[0]
            # a one-digit slip, but never a generation apart (1959 / 1995: father and son)
            slip = Levenshtein.distance(str(x), str(y)) <= 1 and (
                k != "y" or abs(x - y) < GENERATION
            )
            if abs(x - y) == 1 or slip:
                # the year alone wrong: day and month agreeing by chance is rare, unlike
                # namesakes born a day or a month apart
                return "year_typo" if k == "y" else "typo"
            if k == "y" and abs(x - y) <= 2:
                return "near_year"
        text_a, text_b = da.strftime("%Y%m%d"), db.strftime("%Y%m%d")
        if OSA.distance(text_a, text_b) <= 2 and abs(da.year - db.year) < GENERATION:
            return "typo2"
        return "else"
    if da.year != db.year:
        return "else"
    if "Y" in (pa, pb):
        return "year"
    return "month" if da.month == db.month else "else"


def compare_name(a: Features, b: Features) -> str | None:
    if not a.name_key or not b.name_key:
        return None
    if a.name_key == b.name_key:
        if a.has_diacritics and b.has_diacritics:
            return "exact" if a.display == b.display else "exact_folded"
        # Written alike without diacritics: a Kinh name may be several ('Hung': Hùng, Hưng),
        # a name outside the Kinh pattern ('Julia Clarke', 'Ksor Nhi') loses nothing.
        if a.display == b.display and not vietnamese_like(a):
            return "exact"
        return "exact_folded"
    if a.name_sorted and a.name_sorted == b.name_sorted:
        return "reordered"
    wa, wb = a.name_key.split(" "), b.name_key.split(" ")
    if a.family and a.family == b.family and a.given and a.given == b.given:
        ma, mb = wa[1:-1], wb[1:-1]
        if not ma or not mb or set(ma) <= set(mb) or set(mb) <= set(ma):
            return "family_given"
        if OSA.distance(" ".join(ma), " ".join(mb)) > 1:
            return "middle_differs"
        return "fuzzy"
    if _word_subset(wa, wb):
        return "family_given"  # a middle name missing and the order changed ('Đoàn Tiến')
    ca, cb = _compact(a.name_key), _compact(b.name_key)
    if ca == cb:
        return "spacing"
    if OSA.distance(ca, cb) <= 1 or JaroWinkler.similarity(a.name_key, b.name_key) >= 0.92:
        return "fuzzy"
    sorted_edits = min(
        OSA.distance(_compact(a.name_sorted), _compact(b.name_sorted)),
        _word_edits(a.name_key, b.name_key),
    )
    if sorted_edits <= 1:
        return "reordered_fuzzy"
    if _one_word_of(a, b):
        return "partial"
    if a.given and a.given == b.given:
        return "given"
    if min(OSA.distance(ca, cb), sorted_edits) <= 2:
        return "fuzzy2"
    if not set(wa).isdisjoint(wb):
        return "word"
    return "else"


def _word_subset(wa: list[str], wb: list[str]) -> bool:
    """The shorter name (2+ distinct words, strictly fewer) has all its words in the longer one:
    'Đoàn Tiến' ⊂ 'Văn Tiến Đoàn', but not 'Lê Văn Văn' vs 'Lê Văn Phát'."""
    if len(wa) > len(wb):
        wa, wb = wb, wa
    return 2 <= len(wa) < len(wb) and len(set(wa)) == len(wa) and set(wa) <= set(wb)


def compare_commune(a: Features, b: Features) -> str | None:
    if not (a.commune or a.commune_old or a.province) or not (
        b.commune or b.commune_old or b.province
    ):
        return None
    if (a.commune_old and a.commune_old == b.commune_old) or not set(a.communes).isdisjoint(
        b.communes
    ):
        return "same"
    if a.province and a.province == b.province:
        return "province"
    return "else"


def doc_slip(x: str | None, y: str | None) -> bool:
    """Two document numbers one keystroke apart that are not consecutive numbers (cards of
    twins or of one household issued in sequence differ by one in the last digits)."""
    if not x or not y or OSA.distance(x, y) != 1:
        return False
    return not (x.isdigit() and y.isdigit() and abs(int(x) - int(y)) == 1)


def _eq(x: object, y: object) -> str | None:
    if not x or not y:
        return None
    return "same" if x == y else "else"


def _near(x: str | None, y: str | None) -> str | None:
    if not x or not y:
        return None
    if x == y:
        return "same"
    return "typo" if OSA.distance(x, y) <= 1 else "else"


@dataclass
class Score:
    """Result of comparing two feature sets."""

    probability: float
    weight: float
    levels: dict[str, str]
    veto: str | None = None

    def evidence(self, a: Features | None = None, b: Features | None = None) -> dict[str, Any]:
        """Per-field level and weight (and the compared values when given), for reviewers."""
        out: dict[str, Any] = {}
        for fld, lvl in self.levels.items():
            item: dict[str, Any] = {"level": lvl, "weight": round(level_weight(fld, lvl), 2)}
            if a is not None and b is not None:
                item["values"] = [_show(a, fld), _show(b, fld)]
            out[fld] = item
        out["_weight"] = round(self.weight, 2)
        if self.veto:
            out["_veto"] = self.veto
        return out


def _show(f: Features, fld: str) -> Any:
    value = {
        "name": f.display or f.name_key,
        "birth": f.birth_date.isoformat() if f.birth_date else None,
        "commune": f.commune or f.commune_old,
        "mother": f.mother_id,
        # the tokens compared, for reviewers (and JSON: a key is made of sets)
        "address": sorted(f.address.tokens) if f.address else None,
    }.get(fld, getattr(f, fld, None))
    return value


def compare(
    a: Features,
    b: Features,
    name_u: float | None = None,
    word_share: Mapping[str, float] | None = None,
    prior: float | None = None,
) -> Score:
    """Score a pair: Fellegi–Sunter weight → probability, with vetoes for hard conflicts.

    ``name_u`` is the frequency of the shared name key in the registry (term-frequency
    adjustment); without it the average u of the level is used. ``word_share`` is the share
    of records whose name holds each word: two names with one word in common ('word',
    'given') then weigh by how rare the rarest shared word is — sharing 'Nguyễn' (38 % of
    names) is no evidence, sharing 'Ksor' or 'Lilee' is. ``prior``: the match probability
    of a random pair when it is not ``PRIOR`` (a small file, see ``dedup.file_prior``).
    """
    levels: dict[str, str] = {}
    for fld, lvl in (
        ("name", compare_name(a, b)),
        ("birth", compare_birth(a, b)),
        (
            "sex",
            None
            if a.sex in (None, "U") or b.sex in (None, "U")
            else ("agree" if a.sex == b.sex else "else"),
        ),
        ("commune", compare_commune(a, b)),
        ("address", compare_address(a.address, b.address)),
        ("phone", _eq(a.phone, b.phone)),
        ("bhxh", _eq(a.bhxh, b.bhxh)),
        ("passport", _eq(a.passport, b.passport)),
        ("temp_card", _eq(a.temp_card, b.temp_card)),
        ("mother", _eq(a.mother_id, b.mother_id)),
        ("eid", _near(a.eid, b.eid)),
    ):
        if lvl is not None:
            levels[fld] = lvl
    if a.cccd and b.cccd:
        if a.cccd == b.cccd:
            levels["cccd"] = "same"
        elif OSA.distance(a.cccd, b.cccd) <= 1:
            levels["cccd"] = "typo"  # one digit wrong or two swapped
        else:  # two valid ids are two persons (veto); an invalid one may be anything
            levels["cccd"] = "else_valid" if a.cccd_ok and b.cccd_ok else "else"
    base = PRIOR_WEIGHT if prior is None else math.log2(prior / (1 - prior))
    weight = base + sum(level_weight(f, lvl) for f, lvl in levels.items())
    if name_u is not None and levels.get("name") in ("exact", "exact_folded"):
        # term-frequency adjustment: agreeing on a rare name says more than on a common one
        u = LEVELS["name"][levels["name"]][1]
        weight += math.log2(u / max(name_u, 1e-7))
    if word_share and levels.get("name") in ("word", "given") and a.name_key and b.name_key:
        shared = set(a.name_key.split(" ")) & set(b.name_key.split(" "))
        share = min((word_share.get(w, 0.0) for w in shared), default=0.0)
        if share > 0:
            u = LEVELS["name"][levels["name"]][1]
            weight += math.log2(u / max(share, WORD_SHARE_FLOOR))
    veto = _veto(a, b, levels)
    prob = 0.0 if veto else _probability(weight)
    return Score(prob, weight, levels, veto)


def _probability(weight: float) -> float:
    if weight > 60:
        return 1.0
    if weight < -60:
        return 0.0
    odds = 2.0**weight
    return odds / (1.0 + odds)


_NAME_AGREES = frozenset(
    ("exact", "exact_folded", "reordered", "spacing", "family_given", "fuzzy", "reordered_fuzzy")
)


_NAME_DIFFERS = frozenset(
    ("fuzzy", "reordered_fuzzy", "fuzzy2", "partial", "given", "word", "else")
)

_BIRTH_AGREES = frozenset(("exact", "swap", "typo", "year_typo", "near_year", "typo2", "slip"))


def _veto(a: Features, b: Features, levels: dict[str, str]) -> str | None:
    """Hard conflicts only: what no typing error explains."""
    id_agrees = any(levels.get(k) == "same" for k in ("cccd", "bhxh", "passport", "temp_card"))
    if levels.get("cccd") == "else_valid":
        # two different valid personal ids, unless another verified id agrees and two
        # keystrokes explain the difference (a CCCD typed wrong twice over)
        assert a.cccd is not None and b.cccd is not None
        if not (id_agrees and OSA.distance(a.cccd, b.cccd) <= 2):
            return "cccd"
    if levels.get("temp_card") == "else":
        return "temp_card"  # two newborns (twins) with their own temporary cards
    if levels.get("bhxh") == "else" and levels.get("cccd") not in ("same", "typo"):
        assert a.bhxh is not None and b.bhxh is not None
        if OSA.distance(a.bhxh, b.bhxh) > 1:
            return "bhxh"  # two social-insurance numbers and no personal id to reconcile them
    if (
        levels.get("cccd") == "same"
        and a.birth_date
        and b.birth_date
        and abs(a.birth_date.year - b.birth_date.year) >= GENERATION
    ):
        return "parent_id"  # a parent's CCCD on a child's record
    # an unverified document number or a CCCD one keystroke off still speaks for the pair
    id_near = id_agrees or any(levels.get(k) in ("same", "typo") for k in ("cccd", "eid"))
    same_doc = id_agrees or levels.get("eid") == "same"
    # one document typed wrong once; numbers in sequence are not a typo (twins' cards are
    # issued one after the other)
    doc_typo = (levels.get("cccd") == "typo" and doc_slip(a.cccd, b.cccd)) or (
        levels.get("eid") == "typo" and doc_slip(a.eid, b.eid)
    )
    # (a missing birth date does not contradict)
    birth_agrees = levels.get("birth", "exact") in _BIRTH_AGREES
    conflict = given_conflict(a, b)
    # One document number and one birth date: the name was mistyped or replaced by a clerk;
    # twins and namesakes never share a document, nor hold two one keystroke apart.
    if conflict == "strong" and not ((same_doc or doc_typo) and birth_agrees):
        return "given_name"
    if conflict == "weak" and not (same_doc or (doc_typo and birth_agrees)):
        return "given_name_weak"  # 'An'/'Anh': two names, or one typing error
    # Another sex and a name that is not the same letters: twins of opposite sex ('Duy Hiếu'
    # and a sister 'Du yHiên'), not a record with two slips, unless a document agrees.
    if levels.get("sex") == "else" and levels.get("name") in _NAME_DIFFERS and not same_doc:
        return "sex_name"
    # One document number and one name: the birth date was mistyped.
    name_agrees = levels.get("name") in _NAME_AGREES
    if levels.get("birth") == "typo2" and not id_near:
        return "birth_date"  # two digits of a full date: namesakes born weeks apart
    if levels.get("birth") == "else" and not (id_agrees or (id_near and name_agrees)):
        assert a.birth_date is not None and b.birth_date is not None
        if a.precision == "D" and b.precision == "D":
            return "birth_date"
        ya, yb = a.birth_date.year, b.birth_date.year
        # a year off by one or two is a slip; further, one digit explains it only within
        # a generation (1959 / 1995: father and son)
        if abs(ya - yb) > 2 and (OSA.distance(str(ya), str(yb)) > 1 or abs(ya - yb) >= GENERATION):
            return "birth_year"  # father and son: the year alone differs beyond a typo
    return None


def strong_identifier(a: Features, b: Features) -> str | None:
    """The verified identifier two feature sets share (deterministic rule), if any."""
    if a.cccd and a.cccd == b.cccd and a.cccd_ok and b.cccd_ok:
        return "cccd"
    if a.bhxh and a.bhxh == b.bhxh:
        return "bhxh"
    if a.passport and a.passport == b.passport:
        return "passport"
    if a.temp_card and a.temp_card == b.temp_card:
        return "temp_card"
    return None


def grade(probability: float, upper: float, lower: float) -> str:
    """IHE PDQm match grade of a probability against the configured thresholds."""
    if probability >= upper:
        return "certain"
    if probability >= lower:
        return "probable"
    if probability >= lower / 4:
        return "possible"
    return "certainly-not"
