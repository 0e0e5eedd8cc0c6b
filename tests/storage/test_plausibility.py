"""The history store refuses implausible actuals (promise 32): a ceiling and the series' bound."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_forecast.config import ActualsConfig
from retail_forecast.errors import DataValidationError
from retail_forecast.schema import CANONICAL_COLUMNS, DATE, FAMILY, IS_CLOSED, PROMO, STORE, TARGET
from retail_forecast.storage import (
    CONFIRM_SPIKE,
    MAX_SALES,
    HistoryStore,
    RefusedRowsError,
    SpikeRule,
)

END = pd.Timestamp("2017-08-15")
# (series, its sales every day of the window): a busy one, a small one and one that never sold
LEVELS = {(1, "GROCERY I"): 3000.0, (2, "BOOKS"): 4.0, (3, "BABY CARE"): 0.0}
SERIES = list(LEVELS)
N_DAYS = 14


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    dates = pd.date_range(END - pd.Timedelta(days=N_DAYS - 1), END)
    frame = pd.DataFrame(
        [(d, s, f, LEVELS[(s, f)], 0, False) for s, f in SERIES for d in dates],
        columns=[DATE, STORE, FAMILY, TARGET, PROMO, IS_CLOSED],
    )
    frame[FAMILY] = pd.Categorical(frame[FAMILY], categories=sorted({f for _, f in SERIES}))
    with HistoryStore.from_frame(
        frame[list(CANONICAL_COLUMNS)], n_days=N_DAYS, db_path=tmp_path / "h.sqlite"
    ) as opened:
        yield opened


def day(k: int) -> pd.Timestamp:
    return END + pd.Timedelta(days=k)


def actuals(k: int, sales: list[float], **flags: list[bool]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(day(k), s, f, v, 0) for (s, f), v in zip(SERIES, sales, strict=True)],
        columns=[DATE, STORE, FAMILY, TARGET, PROMO],
    )
    for name, values in flags.items():
        frame[name] = values
    return frame


def stored_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM obs").fetchone()[0])


def test_p32_a_value_far_above_the_series_history_is_refused_naming_row_and_bound(
    store: HistoryStore, tmp_path: Path
) -> None:
    """A typo (2,987 sent as 29,870,000) is refused; nothing of the call is kept."""
    before, rows_before = store.snapshot(), stored_rows(tmp_path / "h.sqlite")
    with pytest.raises(RefusedRowsError) as refused:
        store.append_actuals(actuals(1, [29_870_000.0, 5.0, 0.0]))
    (problem,) = refused.value.problems
    assert (problem.position, problem.field, problem.type) == (0, "sales", "sales_implausible")
    assert problem.bound == 10 * 3000.0  # factor 10 x the series' highest sales in the window
    assert "at most 30000 = 10 x max(the series' highest sales 3000" in problem.message
    assert '"confirm_spike": true' in problem.message
    assert isinstance(refused.value, DataValidationError)  # a 422 wherever it surfaces
    assert store.snapshot() is before
    assert stored_rows(tmp_path / "h.sqlite") == rows_before


def test_p32_each_series_is_judged_by_its_own_level_with_a_floor(store: HistoryStore) -> None:
    # the small series may sell 10 x max(4, 10) = 100; the series that never sold 10 x 10 too
    with pytest.raises(RefusedRowsError) as refused:
        store.append_actuals(actuals(1, [3000.0, 100.5, 101.0]))
    assert [(p.position, p.bound) for p in refused.value.problems] == [(1, 100.0), (2, 100.0)]
    assert store.append_actuals(actuals(1, [29_999.0, 100.0, 100.0])).n_new == 3


def test_p32_a_confirmed_spike_is_stored_and_its_resend_is_a_duplicate(
    store: HistoryStore,
) -> None:
    spike = actuals(1, [1e8, 5.0, 0.0], **{CONFIRM_SPIKE: [True, False, False]})
    assert store.append_actuals(spike).n_new == 3
    assert store.snapshot().sales[0, -1] == 1e8
    resent = spike.drop(columns=[CONFIRM_SPIKE])  # an idempotent resend is never judged again
    assert store.append_actuals(resent).n_duplicate == 3
    # the confirmed value is now the series' history: its bound moved with it
    assert store.snapshot().levels[0] == 1e8
    assert store.append_actuals(actuals(2, [5e8, 5.0, 0.0])).n_new == 3


@pytest.mark.parametrize("confirmed", [False, True])
def test_p32_no_value_above_the_hard_ceiling_is_stored(
    store: HistoryStore, confirmed: bool
) -> None:
    rows = actuals(
        1, [np.nextafter(MAX_SALES, np.inf), 5.0, 0.0], **{CONFIRM_SPIKE: [confirmed] * 3}
    )
    with pytest.raises(DataValidationError, match="<= 1e\\+09"):
        store.append_actuals(rows)
    assert store.history_end == END


def test_p32_the_rule_comes_from_the_settings(store: HistoryStore) -> None:
    store.spike_rule = SpikeRule.from_config(ActualsConfig(spike_factor=2.0, spike_floor=50.0))
    with pytest.raises(RefusedRowsError) as refused:
        store.append_actuals(actuals(1, [6000.5, 100.0, 101.0]))
    assert [(p.position, p.bound) for p in refused.value.problems] == [(0, 6000.0), (2, 100.0)]
    assert SpikeRule.from_config(ActualsConfig()).lowest_bound == 100.0


def test_p32_flags_must_be_booleans(store: HistoryStore) -> None:
    with pytest.raises(DataValidationError, match="confirm_spike must be true or false"):
        store.append_actuals(actuals(1, [5.0, 5.0, 0.0], **{CONFIRM_SPIKE: ["yes"] * 3}))
