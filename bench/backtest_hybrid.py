"""The 4-fold backtest of issue 4 on the real data: xgboost, lstm, the held-out hybrid blend,
baselines and the mlforecast LightGBM peer, in one run, with the shipped default settings.

The peer is the strongest recipe measured (``--peer strong``, the default: lags 1-7, 14, 21,
28, rolling means 7/14/28/56 of lag 1, same-weekday means of 4 and 8 weeks, day of week, day,
month, year, onpromotion and the national-holiday flag, 500 trees of 63 leaves at eta 0.05,
the zero rule, trained from the profile's train_start; bench/backtest_quantiles.py's make_peer
without interval windows) or the seed's
(``--peer seed``: lags 1/7/14, rolling means 7/14, 255 leaves).

Usage:
    /usr/bin/time -v .venv/bin/python bench/backtest_hybrid.py \
        --data-dir ../shared/data/favorita-store-sales --config favorita \
        --out bench/backtest_hybrid.json
Per-row fold predictions go to --predictions (outside the repo: they hold real sales).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backtest_quantiles import make_peer
from backtest_xgboost import MLForecastPeer

from retail_forecast.config import DataConfig, settings_for
from retail_forecast.data_processing.dataset import build_dataset
from retail_forecast.settings_profile import resolve_profile
from retail_forecast.training.backtest import run_backtest, summary_table
from retail_forecast.training.factories import model_factories, side_by_side_models
from retail_forecast.training.heldout_blend import add_hybrid
from retail_forecast.utils.log import configure_logging

logger = logging.getLogger("bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data-dir", type=Path, default=Path("../shared/data/favorita-store-sales")
    )
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--predictions", type=Path, default=Path(tempfile.gettempdir()) / "hybrid_folds.parquet"
    )
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--peer", choices=("strong", "seed"), default="strong")
    # a data set's profile (a file or a shipped name): `--config favorita` for the real data
    parser.add_argument("--config", default=None)
    args = parser.parse_args()
    configure_logging("INFO", None, to_stderr=True)
    import lightgbm as lgb

    profile = resolve_profile(args.config) if args.config else None
    settings = settings_for(profile, _env_file=None)
    started = time.perf_counter()
    built = build_dataset(args.data_dir, DataConfig())
    parallel = side_by_side_models(settings, ("xgboost", "lstm"))  # as `train` fits them
    factories = model_factories(settings, built.holidays, side_by_side=bool(parallel)).as_dict()
    if not args.no_peer and args.peer == "strong":  # the recipe backtest_quantiles scores
        factories["mlforecast_strong"] = lambda: make_peer(  # type: ignore[assignment,return-value]
            settings, built, windows=0, trees=500
        )
    if not args.no_peer and args.peer == "seed":
        factories["mlforecast_lgbm"] = lambda: MLForecastPeer(  # type: ignore[assignment,return-value]
            lgb.LGBMRegressor(
                n_estimators=500,
                learning_rate=0.05,
                num_leaves=255,
                n_jobs=2,
                random_state=0,
                verbose=-1,
            ),
            train_start="2015-01-01",
        )
    result = run_backtest(
        built.sales, factories, folds=args.folds, horizon=16, step=16, parallel=parallel
    )
    result, weights = add_hybrid(result)
    wall = time.perf_counter() - started
    result.predictions.to_parquet(args.predictions, index=False)
    report = {
        "command": " ".join(sys.argv),
        "settings": settings.model_dump(mode="json", include={"features", "xgboost", "lstm"}),
        "wall_seconds": round(wall, 1),
        "blend_weights": weights.to_dict(),
        **result.to_dict(),
    }
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    from rich.console import Console

    Console().print(summary_table(result))
    print(json.dumps({"mean": report["mean"], "wall_seconds": report["wall_seconds"]}, indent=2))


if __name__ == "__main__":
    main()
