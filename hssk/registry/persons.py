"""Reading and writing golden records: survivors after merges, the person, deaths.

Linking, merging, search and every other component read persons through these functions, and
a death reaches a person only through :func:`mark_deceased_many`, whatever reported it.

The registry does not audit or publish change events itself (the audit trail and the record
store's listeners belong to components above it): :func:`mark_deceased_many` returns what it
changed and the caller audits it and tells the listeners.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import Any

import psycopg

from hssk.kernel import clock
from hssk.kernel.clock import VN
from hssk.registry.types import PERSON_COLUMNS, Person, person_from_row

MAX_MERGE_HOPS = 50  # longest chain of merges followed to the survivor

# Who reported a death, most authoritative first: the population register holds the civil
# registration of the death (khai tử), a death paper (giấy báo tử) is the medical
# certificate, a hospital's hồ sơ says the patient died there, a station entry is hand-made.
DEATH_SOURCES = ("population", "edoc", "xml130", "station")
_SOURCE_NAMES = {
    "population": ("Cơ sở dữ liệu dân cư", "population register"),
    "edoc": ("Giấy báo tử", "death paper"),
    "xml130": ("Hồ sơ khám chữa bệnh (XML1)", "hospital record (XML1)"),
    "station": ("Trạm y tế xã", "commune health station"),
    "amendment": ("đính chính có kiểm duyệt", "audited amendment"),
}


def resolve_many(conn: psycopg.Connection[Any], ids: Iterable[int]) -> dict[int, int]:
    """Survivor id of each person id (itself when never merged); unknown ids are left out."""
    rows = conn.execute(
        """WITH RECURSIVE chain(start, id, merged_into, depth) AS (
               SELECT p.id, p.id, p.merged_into, 0 FROM person p WHERE p.id = ANY(%s)
             UNION ALL
               SELECT c.start, p.id, p.merged_into, c.depth + 1
                 FROM chain c JOIN person p ON p.id = c.merged_into
                WHERE c.depth < %s)
           SELECT start, id FROM chain WHERE merged_into IS NULL""",
        (list(ids), MAX_MERGE_HOPS),
    ).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def resolve(conn: psycopg.Connection[Any], person_id: int) -> int:
    """Survivor id after merges (the id itself when never merged or unknown)."""
    return resolve_many(conn, [person_id]).get(person_id, person_id)


def merged_ids(conn: psycopg.Connection[Any], person_id: int) -> list[int]:
    """The ids a person's clinical data is stored under: its survivor (merges followed) first,
    then every person merged into the survivor, directly or through others. Merges never move
    data, so a survivor's record is read under all of these."""
    row = conn.execute(
        "SELECT person_merged_ids(person_survivor(%s::bigint))", (person_id,)
    ).fetchone()
    return [int(i) for i in row[0]] if row and row[0] else [person_id]


def merged_ids_many(conn: psycopg.Connection[Any], ids: Iterable[int]) -> dict[int, list[int]]:
    """``merged_ids`` of each id, in one query."""
    wanted = sorted(set(ids))
    rows = conn.execute(
        "SELECT i, person_merged_ids(person_survivor(i)) FROM unnest(%s::bigint[]) AS i",
        (wanted,),
    ).fetchall()
    return {int(i): [int(x) for x in m] for i, m in rows}


_PERSON_BY_ID = f"SELECT {PERSON_COLUMNS} FROM person WHERE id = %s"


def golden_record(conn: psycopg.Connection[Any], person_id: int) -> Person | None:
    """The golden record a person id leads to, merges followed, without ``replaces``: one
    primary-key read for a person never merged (the book's hot path), one more per merge."""
    person = None
    pid = person_id
    for _ in range(MAX_MERGE_HOPS + 1):
        row = conn.execute(_PERSON_BY_ID, (pid,)).fetchone()
        if row is None:
            return None
        person = person_from_row(row)
        if person.merged_into is None:
            break
        pid = person.merged_into
    return person  # (a chain longer than MAX_MERGE_HOPS: where the walk stopped)


# The survivor's row and the ids its data is stored under, in one statement (the book's read;
# both functions are PL/pgSQL, migration 0213, so their plans are kept).
_GOLDEN_WITH_IDS = (
    f"SELECT {PERSON_COLUMNS}, person_merged_ids(id) FROM person"
    " WHERE id = person_survivor(%s::bigint)"
)


def golden_record_ids(
    conn: psycopg.Connection[Any], person_id: int
) -> tuple[Person, list[int]] | None:
    """:func:`golden_record` and :func:`merged_ids` of a person in one read: the survivor's
    golden record and the ids its clinical data is stored under (None for an unknown id)."""
    row = conn.execute(_GOLDEN_WITH_IDS, (person_id,)).fetchone()
    if row is None:
        return None
    return person_from_row(row[:-1]), [int(i) for i in row[-1]]


def get_person(conn: psycopg.Connection[Any], person_id: int) -> Person | None:
    """The golden record, following merges to the survivor; ``replaces`` lists merged ids."""
    person = golden_record(conn, person_id)
    if person is None:
        return None
    person.replaces = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM person WHERE merged_into = %s ORDER BY id", (person.id,)
        ).fetchall()
    ]
    return person


# --- deaths -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Death:
    """One report of a death. ``died_at``: a date (the day in Vietnam) or a moment (a naive
    one is Vietnam time); ``source`` one of DEATH_SOURCES; ``source_ref`` the reporting
    record's key within its source (a re-sent record is recognised by it)."""

    person_id: int
    died_at: date | datetime
    source: str
    source_ref: str

    @property
    def moment(self) -> datetime:
        """The time of death in UTC (a date alone: the start of that day in Vietnam)."""
        d = self.died_at
        if not isinstance(d, datetime):
            d = datetime.combine(d, time(0, 0))
        if d.tzinfo is None:
            d = d.replace(tzinfo=VN)
        return d.astimezone(UTC)

    @property
    def day(self) -> date:
        """The day of death in Vietnam."""
        return self.moment.astimezone(VN).date()

    @property
    def rank(self) -> int:
        return DEATH_SOURCES.index(self.source)


@dataclass(frozen=True)
class Refusal:
    """A death report the registry did not record, with the reason (Vietnamese and English)."""

    death: Death
    rule: str  # death.unknown-person | death.future | death.before-birth | death.already-dead
    vi: str
    en: str


@dataclass
class DeathOutcome:
    """What :func:`mark_deceased_many` did. ``applied``: persons now recorded dead (the
    caller audits and publishes these); ``confirmed``: another report of a death already
    recorded on the same day (kept as evidence; ``upgraded`` ones moved the person's time of
    death to a more authoritative source); ``unchanged``: a report seen before."""

    applied: list[Death] = field(default_factory=list)
    confirmed: list[Death] = field(default_factory=list)
    upgraded: list[Death] = field(default_factory=list)
    unchanged: list[Death] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def changed(self) -> list[Death]:
        """Reports that changed a person's death (recorded, or its time refined)."""
        return self.applied + self.upgraded


def _show(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def _before_birth(day: date, birth: date | None, precision: str | None) -> bool:
    """A death day before the birth date, compared at the birth date's precision."""
    if birth is None:
        return False
    if precision == "Y":
        return day.year < birth.year
    if precision == "M":
        return (day.year, day.month) < (birth.year, birth.month)
    return day < birth


@dataclass
class _Dead:
    day: date
    rank: int
    source: str


def _check(death: Death, today: date, row: Any, dead: _Dead | None) -> Refusal | None:
    """Why ``death`` cannot be recorded, or None. ``row``: (birth_date, precision) or None."""
    pid, day = death.person_id, death.day
    if row is None:
        return Refusal(
            death,
            "death.unknown-person",
            f"Không có người mang mã {pid} trong danh mục người.",
            f"no person with id {pid} in the registry.",
        )
    if day > today:
        return Refusal(
            death,
            "death.future",
            f"Ngày mất {_show(day)} ở tương lai (hôm nay là {_show(today)}, giờ Việt Nam); "
            "kiểm tra lại ngày đã nhập.",
            f"date of death {_show(day)} is in the future (today is {_show(today)}, Vietnam "
            "time); check the date.",
        )
    birth, precision = row
    if _before_birth(day, birth, precision):
        born = {"Y": "%Y", "M": "%m/%Y"}.get(precision or "D", "%d/%m/%Y")
        return Refusal(
            death,
            "death.before-birth",
            f"Ngày mất {_show(day)} trước ngày sinh {birth:{born}} của người này; kiểm tra lại "
            "ngày mất hoặc người được ghi nhận.",
            f"date of death {_show(day)} is before this person's birth ({birth:{born}}); "
            "check the date or the person.",
        )
    if dead is not None and dead.day != day:
        vi, en = _SOURCE_NAMES.get(dead.source, (dead.source, dead.source))
        return Refusal(
            death,
            "death.already-dead",
            f"Người này đã được ghi nhận tử vong ngày {_show(dead.day)} (nguồn: {vi}); không "
            f"ghi thêm ngày mất {_show(day)}. Muốn sửa ngày mất, cần lập đính chính có kiểm "
            "duyệt.",
            f"this person is already recorded dead on {_show(dead.day)} (source: {en}); a "
            f"second date of death ({_show(day)}) is not recorded. Correcting the date needs an "
            "audited amendment.",
        )
    return None


def mark_deceased_many(
    conn: psycopg.Connection[Any], deaths: Sequence[Death], *, today: date | None = None
) -> DeathOutcome:
    """Record deaths on the golden records (of the survivors, after merges), in the caller's
    transaction. Idempotent: a report seen before (same source and ``source_ref``) changes
    nothing. A person keeps one death: another report of the same day (Vietnam date) is kept
    as evidence, and moves the recorded time to it when its source is more authoritative; a
    report of another day, a death before birth or in the future is refused."""
    out = DeathOutcome()
    for d in deaths:
        if d.source not in DEATH_SOURCES:
            raise ValueError(f"unknown death source {d.source!r}: one of {DEATH_SOURCES}")
    if not deaths:
        return out
    today = today or clock.today()
    survivors = resolve_many(conn, {d.person_id for d in deaths})
    reports = [replace(d, person_id=survivors.get(d.person_id, d.person_id)) for d in deaths]
    pids = sorted({d.person_id for d in reports})
    persons = {
        int(r[0]): (r[1], r[2], r[3])
        for r in conn.execute(
            """SELECT id, birth_date, birth_precision, deceased_at FROM person
                WHERE id = ANY(%s) ORDER BY id FOR UPDATE""",
            (pids,),
        ).fetchall()
    }
    best = {
        int(r[0]): (int(r[1]), r[2])
        for r in conn.execute(
            """SELECT DISTINCT ON (person_id) person_id, rank, source FROM person_death
                WHERE person_id = ANY(%s) ORDER BY person_id, rank, died_at""",
            (pids,),
        ).fetchall()
    }
    seen = {
        (r[0], r[1])
        for r in conn.execute(
            """SELECT d.source, d.source_ref FROM person_death d
                 JOIN unnest(%s::text[], %s::text[]) AS q(source, ref)
                   ON d.source = q.source AND d.source_ref = q.ref""",
            ([d.source for d in reports], [d.source_ref for d in reports]),
        ).fetchall()
    }
    dead: dict[int, _Dead] = {}
    for pid, (_, _, at) in persons.items():
        if at is not None:
            rank, source = best.get(pid, (len(DEATH_SOURCES), "unknown"))
            dead[pid] = _Dead(at.astimezone(VN).date(), rank, source)
    # most authoritative first, then earliest: the order of the batch does not matter
    for d in sorted(reports, key=lambda d: (d.rank, d.moment, d.source_ref)):
        if (d.source, d.source_ref) in seen:
            out.unchanged.append(d)
            continue
        row = persons.get(d.person_id)
        refusal = _check(d, today, row[:2] if row else None, dead.get(d.person_id))
        if refusal is not None:
            out.refused.append(refusal)
            continue
        seen.add((d.source, d.source_ref))
        now = dead.get(d.person_id)
        if now is None:
            out.applied.append(d)
            dead[d.person_id] = _Dead(d.day, d.rank, d.source)
        elif d.rank < now.rank:
            out.upgraded.append(d)
            now.rank, now.source = d.rank, d.source
        else:
            out.confirmed.append(d)
    kept = out.applied + out.upgraded + out.confirmed
    if kept:
        conn.execute(
            """INSERT INTO person_death (person_id, died_at, source, source_ref, rank)
               SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[], %s::text[],
                                    %s::smallint[])
               ON CONFLICT (source, source_ref) DO NOTHING""",
            (
                [d.person_id for d in kept],
                [d.moment for d in kept],
                [d.source for d in kept],
                [d.source_ref for d in kept],
                [d.rank for d in kept],
            ),
        )
    # one time of death per person: the most authoritative changing report of the batch
    final: dict[int, Death] = {}
    for d in out.changed:
        if d.person_id not in final or d.rank < final[d.person_id].rank:
            final[d.person_id] = d
    if final:
        conn.execute(
            """UPDATE person p SET deceased_at = q.at, updated_at = now()
                 FROM unnest(%s::bigint[], %s::timestamptz[]) AS q(id, at)
                WHERE p.id = q.id""",
            (list(final), [d.moment for d in final.values()]),
        )
    return out


@dataclass(frozen=True)
class LifeDates:
    """What a date entered about a person is checked against: birth (at its precision, 'Y'
    year, 'M' month, else day) and death (the day in Vietnam)."""

    birth: date | None
    precision: str | None
    died: date | None

    def before_birth(self, day: date) -> bool:
        return _before_birth(day, self.birth, self.precision)

    def birth_text(self) -> str:
        if self.birth is None:
            return "?"
        shown = {"Y": "%Y", "M": "%m/%Y"}.get(self.precision or "D", "%d/%m/%Y")
        return self.birth.strftime(shown)


def life_dates(conn: psycopg.Connection[Any], ids: Iterable[int]) -> dict[int, LifeDates]:
    """Birth and death of persons (by the ids asked, merges followed), in one read."""
    survivors = resolve_many(conn, set(ids))
    rows = conn.execute(
        "SELECT id, birth_date, birth_precision, deceased_at FROM person WHERE id = ANY(%s)",
        (sorted(set(survivors.values())),),
    ).fetchall()
    by_id = {int(r[0]): LifeDates(r[1], r[2], r[3] and r[3].astimezone(VN).date()) for r in rows}
    return {asked: by_id[s] for asked, s in survivors.items() if s in by_id}


@dataclass(frozen=True)
class DeathAmendment:
    """The corrected day of death of a person already recorded dead (an audited change)."""

    person_id: int
    died_on: date
    reason: str
    ref: str  # the amendment's key (kept with the evidence of the death)


def amend_death(
    conn: psycopg.Connection[Any], amendment: DeathAmendment, *, today: date | None = None
) -> tuple[date, date] | Refusal:
    """Correct the day of death of a person recorded dead; returns (old day, new day) for the
    caller's audit, or why not (not recorded dead, a day before birth or in the future). The
    correction is kept as evidence (source 'amendment') and overrides the reports before it."""
    pid = resolve(conn, amendment.person_id)
    death = Death(pid, amendment.died_on, "station", amendment.ref)
    row = conn.execute(
        "SELECT birth_date, birth_precision, deceased_at FROM person WHERE id = %s FOR UPDATE",
        (pid,),
    ).fetchone()
    if row is None or row[2] is None:
        return Refusal(death, "death.not-dead",
                       "Người này chưa được ghi nhận tử vong: không có ngày mất để đính chính.",
                       "this person is not recorded dead: there is no date of death to correct.")  # fmt: skip
    refusal = _check(death, today or clock.today(), row[:2], None)
    if refusal is not None:
        return refusal
    conn.execute(
        """INSERT INTO person_death (person_id, died_at, source, source_ref, rank)
           VALUES (%s, %s, 'amendment', %s, -1) ON CONFLICT (source, source_ref) DO NOTHING""",
        (pid, death.moment, amendment.ref),
    )
    conn.execute(
        "UPDATE person SET deceased_at = %s, updated_at = now() WHERE id = %s",
        (death.moment, pid),
    )
    return row[2].astimezone(VN).date(), amendment.died_on


# --- households -------------------------------------------------------------------------------
@dataclass(frozen=True)
class HouseholdMove:
    """A person joins a household (by its code), becomes its head, or leaves it."""

    person_id: int
    code: str
    action: str  # join | head | leave


HOUSEHOLD_ACTIONS = ("join", "head", "leave")


def move_households(
    conn: psycopg.Connection[Any], moves: Sequence[HouseholdMove]
) -> list[HouseholdMove]:
    """Apply household entries to the golden records (survivors), set-based; a household is
    created on its first member (in that member's commune). Returns the entries that changed
    a person's household (with the survivor's id); applying them again changes nothing."""
    for mv in moves:
        if mv.action not in HOUSEHOLD_ACTIONS:
            raise ValueError(f"unknown household action {mv.action!r}: one of {HOUSEHOLD_ACTIONS}")
    if not moves:
        return []
    survivors = resolve_many(conn, {m.person_id for m in moves})
    last: dict[int, HouseholdMove] = {}  # one entry per person: the last one given
    for mv in moves:
        if mv.person_id in survivors:
            last[survivors[mv.person_id]] = mv
    pids = sorted(last)
    args = (pids, [last[p].code for p in pids], [last[p].action for p in pids])
    changed = conn.execute(
        """WITH q AS (SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[])
                        AS q(person_id, code, action)),
           new_households AS (
             INSERT INTO household (code, commune_code)
             SELECT DISTINCT ON (q.code) q.code, p.commune_code
               FROM q JOIN person p ON p.id = q.person_id
              WHERE q.action <> 'leave' ORDER BY q.code, q.person_id
             ON CONFLICT (code) DO NOTHING RETURNING id, code),
           target AS (
             SELECT q.person_id, q.action,
                    CASE WHEN q.action = 'leave' THEN NULL
                         ELSE coalesce(n.id, h.id) END AS household_id,
                    coalesce(n.id, h.id) AS named
               FROM q LEFT JOIN household h ON h.code = q.code
                      LEFT JOIN new_households n ON n.code = q.code)
           UPDATE person p SET household_id = t.household_id, updated_at = now()
             FROM target t
            WHERE p.id = t.person_id
              AND p.household_id IS DISTINCT FROM t.household_id
              AND (t.action <> 'leave' OR p.household_id = t.named)
           RETURNING p.id""",
        args,
    ).fetchall()
    conn.execute(
        """UPDATE household h SET head_person = q.person_id
             FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS q(person_id, code, action)
            WHERE q.action = 'head' AND h.code = q.code
              AND h.head_person IS DISTINCT FROM q.person_id""",
        args,
    )
    return [replace(last[pid], person_id=pid) for pid in sorted(int(r[0]) for r in changed)]


def households_known(conn: psycopg.Connection[Any], codes: Iterable[str]) -> set[str]:
    """The ``codes`` that name a household on record."""
    rows = conn.execute(
        "SELECT code FROM household WHERE code = ANY(%s)", (sorted(set(codes)),)
    ).fetchall()
    return {str(r[0]) for r in rows}
