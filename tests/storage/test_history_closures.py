"""HistoryStore: an actual of a day the data set closes (``is_closed``, the API's open 0).

Promise 37: stored as a closed day (pending or complete, across a reopen), sales 0 only, the
closed flag one of the values the conflict policy compares, and never closed by a correction.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retail_forecast.errors import ConflictError, DataValidationError
from retail_forecast.schema import CANONICAL_COLUMNS, DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.storage import HistoryStore, RefusedRowsError
from retail_forecast.storage.conflict_policy import CORRECTION

FAMILIES = ["AUTOMOTIVE", "BEVERAGES"]
STORES = [1, 2]


def _rows(day: str) -> pd.DataFrame:
    """Every series' actual on ``day`` (sales that encode their key), all open."""
    date = pd.Timestamp(day)
    records = [
        {DATE: date, STORE: s, FAMILY: f, TARGET: s * 100.0 + k + 0.5, PROMO: 0, IS_CLOSED: False}
        for s in STORES
        for k, f in enumerate(FAMILIES)
    ]
    return pd.DataFrame.from_records(records)


def make_sales(start: str, end: str) -> pd.DataFrame:
    frame = pd.concat([_rows(str(d.date())) for d in pd.date_range(start, end)], ignore_index=True)
    frame[FAMILY] = pd.Categorical(frame[FAMILY], categories=FAMILIES)
    return frame.sort_values([STORE, FAMILY, DATE], ignore_index=True)[list(CANONICAL_COLUMNS)]


def closed_rows(day: str, *, shut: int = 0) -> pd.DataFrame:
    """Every series' actual on ``day``; row ``shut`` is a closure (sales 0)."""
    rows = _rows(day)
    rows.loc[shut, [TARGET, IS_CLOSED]] = [0.0, True]
    return rows


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore.from_frame(
        make_sales("2017-07-01", "2017-08-15"), n_days=14, db_path=tmp_path / "h.sqlite"
    )


def test_p37_a_closed_actual_is_stored_closed_pending_and_complete(
    store: HistoryStore, tmp_path: Path
) -> None:
    first = closed_rows("2017-08-16", shut=0)
    store.append_actuals(first.iloc[:2])  # pending: two series of 16 August have no row yet
    store.close()
    with HistoryStore.open(tmp_path / "h.sqlite") as reopened:
        rest = pd.concat([first.iloc[2:], closed_rows("2017-08-17", shut=1)], ignore_index=True)
        reopened.append_actuals(rest)
        frame = reopened.to_frame()
        assert reopened.history_end == pd.Timestamp("2017-08-17")
    closed = frame[frame[IS_CLOSED]]
    assert [
        (str(d.date()), s, f) for d, s, f in closed[["date", "store_nbr", "family"]].values
    ] == [
        ("2017-08-16", 1, "AUTOMOTIVE"),
        ("2017-08-17", 1, "BEVERAGES"),
    ]
    assert (closed[TARGET] == 0).all()


def test_p37_a_closed_actual_with_sales_is_refused(store: HistoryStore) -> None:
    rows = closed_rows("2017-08-16", shut=2)
    rows.loc[2, TARGET] = 3.0
    with pytest.raises(DataValidationError, match="closed day have sales other than 0"):
        store.append_actuals(rows)
    assert store.history_end == pd.Timestamp("2017-08-15")


def test_p37_open_and_closed_are_different_values(store: HistoryStore) -> None:
    store.append_actuals(closed_rows("2017-08-16"))
    assert store.append_actuals(closed_rows("2017-08-16")).n_new == 0  # a duplicate
    reopened = closed_rows("2017-08-16")
    reopened[IS_CLOSED] = False
    with pytest.raises(ConflictError, match="recorded closed, received open"):
        store.append_actuals(reopened)
    reopened[CORRECTION] = True
    with pytest.raises(RefusedRowsError) as refused:
        store.append_actuals(reopened)
    assert [p.type for p in refused.value.problems] == ["correction_of_closed_day"]
    closing = _rows("2017-08-15")
    closing[IS_CLOSED] = closing.index == 0
    closing.loc[0, TARGET] = 0.0
    closing[CORRECTION] = True
    with pytest.raises(RefusedRowsError):  # a correction does not close a stored open day
        store.append_actuals(closing)
