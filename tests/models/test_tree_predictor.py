from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from tests.models.test_tree_walker import _booster, _data

from retail_forecast.models.tree_predictor import (
    WALKER_MAX_ROWS,
    ByRowCount,
    InplacePredictor,
    tree_predictor,
)
from retail_forecast.models.tree_walker import NumpyTreeWalker

F32 = npt.NDArray[np.float32]


@dataclass
class Recording:
    """A predictor that answers its own tag for every row and records the row counts it saw."""

    tag: float
    calls: list[int] = field(default_factory=list)

    def predict(self, x: F32) -> F32:
        self.calls.append(len(x))
        return np.full(len(x), self.tag, dtype=np.float32)


def test_by_row_count_sends_up_to_the_limit_to_small_and_the_rest_to_large() -> None:
    small, large = Recording(1.0), Recording(2.0)
    router = ByRowCount(small=small, large=large, max_small_rows=4)
    for n in (1, 4, 5, 9):
        out = router.predict(np.zeros((n, 3), dtype=np.float32))
        assert out.tolist() == [1.0 if n <= 4 else 2.0] * n
    assert small.calls == [1, 4]
    assert large.calls == [5, 9]


def test_plain_predictor_is_xgboost_and_serving_puts_the_walker_before_it() -> None:
    booster = _booster()
    plain = tree_predictor(booster, serving=False)
    serving = tree_predictor(booster, serving=True)
    assert isinstance(plain, InplacePredictor)
    assert isinstance(serving, ByRowCount)
    assert isinstance(serving.small, NumpyTreeWalker)
    assert isinstance(serving.large, InplacePredictor)
    assert serving.max_small_rows == WALKER_MAX_ROWS


def test_every_predictor_gives_xgboosts_float32_predictions_bit_for_bit() -> None:
    booster = _booster()
    x, _ = _data(300, seed=3)  # with missing values and categorical columns
    expected = booster.inplace_predict(x, validate_features=False)
    for serving in (False, True):
        predictor = tree_predictor(booster, serving=serving)
        for n in (1, WALKER_MAX_ROWS, WALKER_MAX_ROWS + 1, len(x)):
            got = predictor.predict(x[:n])
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, expected[:n])
