"""The conflict policy for an actual already stored: one rule, used by both stores of actuals.

An actual is keyed by ``(date, store_nbr, family)``. Compared with what a store holds, a
received row is *new* (no value stored for its key: it is stored), a *duplicate* (its values
agree with the stored ones: an idempotent no-op) or a *conflict* (a value differs: the stored
value is kept, never overwritten). Values agree when sales differ by at most
:data:`SALES_TOLERANCE` and onpromotion is equal, where the store keeps onpromotion. Within one
batch, identical repeats of a key collapse to one row; repeats that disagree make those rows
invalid. How each store answers a batch holding conflicts is in the package docstring.

The one exception is explicit: a row whose :data:`CORRECTION` column is true *replaces* a
different stored value (a *correction*), and the store records the old and the new value in its
audit table (:mod:`retail_forecast.storage.corrections`). Without the flag a different value is
a conflict, so a typo is never overwritten by accident and never fixed silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

SALES_TOLERANCE: Final = 1e-9
MAX_LISTED: Final = 20  # conflicts named in one message; the count is always complete
CORRECTION: Final = "correction"
"""Optional boolean column of actuals: the row replaces a different stored value (audited)."""
RESOLVE_HINT: Final = (
    'a stored actual is replaced only by a correction: send the row with "correction": true'
    " to replace it (audited), or send the recorded value again, or leave the row out"
)

Bools = npt.NDArray[np.bool_]


def agrees(
    stored_sales: npt.ArrayLike,
    sales: npt.ArrayLike,
    stored_promo: npt.ArrayLike | None = None,
    promo: npt.ArrayLike | None = None,
) -> Bools:
    """Return True where a received row repeats the stored values (a duplicate), elementwise.

    Pass ``stored_promo`` and ``promo`` where the store keeps onpromotion. A missing stored
    value (NaN) never agrees: the caller tells new rows from conflicts before asking.
    """
    same: Bools = np.abs(np.asarray(sales) - np.asarray(stored_sales)) <= SALES_TOLERANCE
    if stored_promo is not None and promo is not None:
        same &= np.asarray(stored_promo) == np.asarray(promo)
    return same


def disagreeing_repeats(
    repeat: Bools, sales: npt.ArrayLike, promo: npt.ArrayLike | None = None
) -> Bools:
    """Rows sorted by key; ``repeat[i]``: row i has row i-1's key. True where they disagree."""
    sales = np.asarray(sales)
    previous_promo = None if promo is None else np.roll(np.asarray(promo), 1)
    return repeat & ~agrees(np.roll(sales, 1), sales, previous_promo, promo)


def describe_conflict(
    day: object,
    store: int,
    family: str,
    stored: tuple[float, int | None],
    received: tuple[float, int | None],
) -> str:
    """One conflict for a message: the key, the recorded and the received values."""

    def values(sales: float, promo: int | None) -> str:
        return f"sales={sales:g}" + ("" if promo is None else f" onpromotion={promo}")

    return (
        f"{day} store_nbr={store} family={family!r}: recorded {values(*stored)},"
        f" received {values(*received)}"
    )


def conflict_message(conflicts: Sequence[str], *, outcome: str, count: int | None = None) -> str:
    """Name a batch's conflicts in one message: count, ``outcome``, what to do, the first ones.

    ``count``: how many there are when ``conflicts`` lists only the first ones.
    """
    total = len(conflicts) if count is None else count
    listed = "; ".join(conflicts[:MAX_LISTED])
    return f"{total} actuals contradict recorded values; {outcome} ({RESOLVE_HINT}): {listed}"
