"""Merging a batch of actuals with what the history store holds: new, duplicate, corrected.

Applies the conflict policy (storage.conflict_policy) key by key: a stored key with the same
values is a duplicate; with a different value it is a correction when its row says so and a
conflict otherwise. Whether the data set closed the day (``is_closed``) is one of the values
(the yearly closures' days excepted: their rows need not say so). A correction the store cannot
apply (older than its window, of a closed day, or one that closes a day) refuses the batch
(RefusedRowsError, 422), a conflict refuses it too (ConflictError, 409); either way nothing is
applied. No I/O: the store writes what the merge returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from retail_forecast.closed_days import NO_YEARLY_CLOSURES, YearlyClosures
from retail_forecast.errors import ConflictError
from retail_forecast.schema import SeriesKey
from retail_forecast.storage.conflict_policy import agrees, conflict_message, describe_conflict
from retail_forecast.storage.history_rows import (
    DAY,
    Batch,
    Bools,
    Floats,
    Ints,
    PendingDay,
    RowFlags,
    Window,
)
from retail_forecast.storage.plausibility import RefusedRowsError, RowProblem

__all__ = ["Merge", "merge_batch"]


@dataclasses.dataclass(frozen=True)
class Merge:
    """Pending days after a batch is merged, and what each batch row is."""

    pending: dict[np.datetime64, PendingDay]
    new_mask: Bools
    n_duplicate: int
    n_too_old: int
    fixed: Ints  # batch rows that correct a different stored value
    old_sales: Floats  # the values they replace
    old_promo: Ints


@dataclasses.dataclass
class _Found:
    """The stored keys of a batch, sorted: duplicates, corrections (``fixed``), conflicts."""

    series: tuple[SeriesKey, ...]
    batch: Batch
    correct: Bools
    closures: YearlyClosures
    conflicts: list[str] = dataclasses.field(default_factory=list)
    fixed: list[Ints] = dataclasses.field(default_factory=list)
    old_sales: list[Floats] = dataclasses.field(default_factory=list)
    old_promo: list[Ints] = dataclasses.field(default_factory=list)
    n_duplicate: int = 0

    def judge(self, rows: Ints, old_sales: Floats, old_promo: Ints, old_closed: Bools) -> Bools:
        """Sort stored batch ``rows`` (their stored values given); True where a row corrects."""
        batch = self.batch
        same = agrees(old_sales, batch.sales[rows], old_promo, batch.promo[rows])
        reopened = (old_closed != batch.closed[rows]) & ~self.closures.mask(batch.dates[rows])
        same &= ~reopened
        fix = ~same & self.correct[rows]
        clash = ~same & ~fix
        self.conflicts += [
            describe_conflict(
                batch.dates[r],
                self.series[batch.idx[r]][0],
                self.series[batch.idx[r]][1],
                stored=(s, p),
                received=(float(batch.sales[r]), int(batch.promo[r])),
            )
            + (f" (recorded {_state(c)}, received {_state(bool(batch.closed[r]))})" if o else "")
            for r, s, p, c, o in zip(
                rows[clash].tolist(),
                old_sales[clash].tolist(),
                old_promo[clash].tolist(),
                old_closed[clash].tolist(),
                reopened[clash].tolist(),
                strict=True,
            )
        ]
        self.n_duplicate += int(same.sum())
        self.fixed.append(rows[fix])
        self.old_sales.append(old_sales[fix])
        self.old_promo.append(old_promo[fix])
        return fix


def _state(closed: bool) -> str:
    return "closed" if closed else "open"


def _refused_fixes(
    batch: Batch, flags: RowFlags, *, first: np.datetime64, closed: Ints
) -> list[RowProblem]:
    """Corrections no store can apply: older than the window, of a closed day, or closing one."""
    problems = [
        RowProblem(
            int(flags.pos[r]),
            "date",
            "correction_outside_window",
            f"{batch.dates[r]} is before the stored history window (from {first}): only the"
            " actuals of the window can be corrected",
        )
        for r in np.flatnonzero(flags.correct & (batch.dates < first))
    ]
    problems += [
        RowProblem(
            int(flags.pos[r]),
            "date",
            "correction_of_closed_day",
            f"{batch.dates[r]} is a closed day (sales 0) or the row closes it (open 0): a"
            " correction can change an open day's values only",
        )
        for r in closed
    ]
    return sorted(problems, key=lambda problem: problem.position)


def merge_batch(
    *,
    window: Window,
    pending: Mapping[np.datetime64, PendingDay],
    series: tuple[SeriesKey, ...],
    batch: Batch,
    flags: RowFlags,
    closures: YearlyClosures = NO_YEARLY_CLOSURES,
) -> Merge:
    """Check a batch against what is recorded; nothing is applied on a refusal or a conflict.

    Corrections of pending days are merged into the returned pending days; those of the window
    are the caller's to apply (``Merge.fixed``, ``storage.corrections.corrected_window``).
    ``closures``: the bundle's yearly closed days (stored closed; an actual without ``open``
    0 for one is not a reopening).
    """
    first, end = window.dates[0], window.dates[-1]
    found = _Found(series, batch, flags.correct, closures)
    known = np.flatnonzero((batch.dates >= first) & (batch.dates <= end))
    row, col = batch.idx[known], ((batch.dates[known] - first) // DAY).astype(np.int64)
    stored_closed = window.closed[row, col]
    fix = found.judge(known, window.sales[row, col], window.promo[row, col], stored_closed)
    closed_fixes = [known[fix & (stored_closed | batch.closed[known])]]
    merged = dict(pending)
    new_mask = np.zeros(len(batch.idx), dtype=bool)
    for day in np.unique(batch.dates[batch.dates > end]):
        rows = np.flatnonzero(batch.dates == day)
        old = pending.get(day) or PendingDay.empty(day, len(series))
        stored = old.mask[batch.idx[rows]]
        seen, fresh = rows[stored], rows[~stored]
        at = batch.idx[seen]
        fixed = found.judge(seen, old.sales[at], old.promo[at], old.closed[at])
        fixes = seen[fixed]
        closed_fixes.append(seen[fixed & (old.closed[at] | batch.closed[seen])])
        changed = np.concatenate([fresh, fixes])
        if changed.size:
            idx = batch.idx[changed]
            merged[day] = old.with_rows(
                idx, batch.sales[changed], batch.promo[changed], batch.closed[changed]
            )
        new_mask[fresh] = True
    refused = _refused_fixes(batch, flags, first=first, closed=np.concatenate(closed_fixes))
    if refused:
        raise RefusedRowsError(refused)
    if found.conflicts:
        raise ConflictError(conflict_message(found.conflicts, outcome="nothing was applied"))
    return Merge(
        pending=merged,
        new_mask=new_mask,
        n_duplicate=found.n_duplicate,
        n_too_old=int((batch.dates < first).sum()),
        fixed=np.concatenate([np.zeros(0, np.int64), *found.fixed]),
        old_sales=np.concatenate([np.zeros(0, np.float64), *found.old_sales]),
        old_promo=np.concatenate([np.zeros(0, np.int64), *found.old_promo]),
    )
