"""The conflict policy: one rule, and both stores of actuals follow it the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_forecast.errors import ConflictError
from retail_forecast.schema import CANONICAL_COLUMNS, DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.storage import SALES_TOLERANCE, HistoryStore, PredictionLogDB, agrees
from retail_forecast.storage.conflict_policy import (
    MAX_LISTED,
    conflict_message,
    describe_conflict,
    disagreeing_repeats,
)

END = pd.Timestamp("2017-08-15")
SERIES = [(1, "BEVERAGES"), (2, "BEVERAGES")]


def test_agrees_within_the_tolerance_and_on_onpromotion() -> None:
    stored = np.array([10.0, 10.0, 10.0, 10.0])
    received = stored + np.array([0.0, SALES_TOLERANCE / 2, SALES_TOLERANCE * 10, 0.0])
    assert agrees(stored, received).tolist() == [True, True, False, True]
    promo = agrees(stored, received, np.array([1, 1, 1, 1]), np.array([1, 1, 1, 0]))
    assert promo.tolist() == [True, True, False, False]
    assert not agrees(np.array([np.nan]), np.array([0.0])).any()  # nothing stored: not a repeat


def test_disagreeing_repeats_compare_each_row_with_the_previous_of_its_key() -> None:
    repeat = np.array([False, True, True, False, True])
    sales = np.array([1.0, 1.0, 2.0, 2.0, 2.0])
    assert disagreeing_repeats(repeat, sales).tolist() == [False, False, True, False, False]
    promo = np.array([0, 0, 0, 0, 1])
    assert disagreeing_repeats(repeat, sales, promo).tolist() == [False, False, True, False, True]


def test_conflict_message_counts_all_names_the_first_and_says_what_to_do() -> None:
    lines = [
        describe_conflict("2017-08-16", s, "BEVERAGES", stored=(1.0, 0), received=(2.5, 1))
        for s in range(MAX_LISTED + 5)
    ]
    assert lines[0] == (
        "2017-08-16 store_nbr=0 family='BEVERAGES': recorded sales=1 onpromotion=0,"
        " received sales=2.5 onpromotion=1"
    )
    message = conflict_message(lines, outcome="nothing was applied")
    assert message.startswith("25 actuals contradict recorded values; nothing was applied (")
    assert "replaced only by a correction" in message
    assert f"store_nbr={MAX_LISTED - 1} " in message
    assert f"store_nbr={MAX_LISTED} " not in message
    assert conflict_message(lines[:2], outcome="kept", count=40).startswith("40 actuals")


def _history(tmp_path: Path) -> HistoryStore:
    dates = pd.date_range(END - pd.Timedelta(days=6), END)
    frame = pd.DataFrame(
        [(d, s, f, 10.0, 0, False) for s, f in SERIES for d in dates],
        columns=[DATE, STORE, FAMILY, TARGET, PROMO, IS_CLOSED],
    )
    frame[FAMILY] = pd.Categorical(frame[FAMILY], categories=["BEVERAGES"])
    return HistoryStore.from_frame(frame[list(CANONICAL_COLUMNS)], n_days=7, db_path=tmp_path / "h")


def _actuals(day: pd.Timestamp, sales: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        [(day, s, f, v, 0) for (s, f), v in zip(SERIES, sales, strict=True)],
        columns=[DATE, STORE, FAMILY, TARGET, PROMO],
    )


@pytest.mark.parametrize(
    ("second", "is_conflict"),
    [([5.0, 6.0], False), ([5.0 + SALES_TOLERANCE / 2, 6.0], False), ([5.0, 6.5], True)],
)
def test_both_stores_judge_a_resent_actual_alike(
    tmp_path: Path, second: list[float], is_conflict: bool
) -> None:
    """History and prediction log: a repeat is a no-op, a different value keeps the stored one."""
    day = END + pd.Timedelta(days=1)
    history, log = _history(tmp_path), PredictionLogDB(tmp_path / "log.sqlite")
    first = _actuals(day, [5.0, 6.0])
    assert history.append_actuals(first).n_new == 2
    assert log.ingest_actuals(first).inserted == 2
    resent = _actuals(day, second)
    result = log.ingest_actuals(resent)
    assert (result.unchanged, result.conflicts) == ((1, 1) if is_conflict else (2, 0))
    assert log.ingest_actuals(first).unchanged == 2  # the stored values are still the first ones
    if is_conflict:
        with pytest.raises(ConflictError, match="store_nbr=2 family='BEVERAGES'"):
            history.append_actuals(resent)
    else:
        assert history.append_actuals(resent).n_duplicate == 2
    assert history.to_frame().query(f"{DATE} == @day")[TARGET].tolist() == [5.0, 6.0]
    history.close()
