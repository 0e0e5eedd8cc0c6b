"""Generalization bench: the product's backtest, shipped defaults, on differently shaped panels.

For each generator shape (``retail-forecast data generate --shape NAME``) it writes a panel into
a temporary directory, runs ``retail-forecast backtest --json`` on it exactly as a user would
(the generated data's own ``retail_forecast.toml`` profile is picked up from the data
directory; no other setting), and collects per-fold and mean RMSLE of every model and of the
four baselines of the same run, and the improvement of the best model over the best naive
baseline (and over the seasonal naive, the issue's bar) in percent.

Usage (the run recorded in bench/RESULTS.md, "generalization"):
    .venv/bin/python bench/generalization.py --shapes recent-years,one-family,gaps,long-horizon \
        --out bench/generalization.json
Smaller and faster: ``--stores 3 --families 4 --folds 2``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

BASELINES: Final = ("seasonal_naive", "mean_14", "last_value", "zero")
DEFAULT_SHAPES: Final = "recent-years,one-family,gaps,long-horizon"
DEFAULT_MODELS: Final = "xgboost,lstm,hybrid"
NAMED_FAMILIES: Final = ("one-family",)  # shapes whose preset names its families
# The product's console script (`retail-forecast`, pyproject's project.scripts) run by the
# interpreter of this bench, so the same environment answers whether or not it is on PATH.
CLI: Final = ("-c", "import sys; from retail_forecast.cli import main; sys.exit(main())")


def _cli(args: Sequence[str], *, cwd: Path) -> str:
    """Run one product command and return its stdout; a failure shows the command's stderr.

    It runs in ``cwd`` (a fresh directory, so no ``.env`` of the caller's is read) and without
    any ``RF_*`` variable: the shipped defaults plus the data set's own profile, nothing else.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RF_")}
    done = subprocess.run(
        [sys.executable, *CLI, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"retail-forecast {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def generate(shape: str, out: Path, *, size: Mapping[str, int | None], seed: int) -> Path:
    """Write the shape's panel (Kaggle layout + its profile) into ``out``."""
    args = ["data", "generate", "--out", str(out), "--shape", shape, "--seed", str(seed)]
    for flag, value in size.items():
        # --families replaces a preset's named families: one-family keeps its one family.
        if value is not None and not (flag == "families" and shape in NAMED_FAMILIES):
            args += [f"--{flag}", str(value)]
    _cli(args, cwd=out.parent)
    return out


def backtest(data_dir: Path, *, models: str, folds: int | None) -> dict[str, Any]:
    """``retail-forecast backtest --json`` on ``data_dir``: the product's own result object."""
    args = ["backtest", "--data-dir", str(data_dir), "--models", models, "--json"]
    if folds is not None:
        args += ["--folds", str(folds)]
    result: dict[str, Any] = json.loads(_cli(args, cwd=data_dir.parent))
    return result


def summarize(shape: str, result: Mapping[str, Any], *, seconds: float) -> dict[str, Any]:
    """Per-fold and mean RMSLE of each name, the best of each kind and the improvement in %."""
    mean: dict[str, float] = dict(result["mean"])
    models = [name for name in mean if name not in BASELINES]
    best_model = min(models, key=mean.__getitem__)
    best_naive = min(BASELINES, key=mean.__getitem__)

    def gain(over: str) -> float:
        return 100.0 * (1.0 - mean[best_model] / mean[over])

    return {
        "shape": shape,
        "names": models + list(BASELINES),
        "folds": {fold["start"]: fold["rmsle"] for fold in result["folds"]},
        "fold_seconds": {fold["start"]: fold["seconds"] for fold in result["folds"]},
        "mean": mean,
        "best_model": best_model,
        "best_naive": best_naive,
        "improvement_pct": gain(best_naive),
        "improvement_over_seasonal_naive_pct": gain("seasonal_naive"),
        "wall_seconds": seconds,
    }


def run_shape(
    shape: str,
    workdir: Path,
    *,
    size: Mapping[str, int | None],
    models: str = DEFAULT_MODELS,
    folds: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Generate one shape under ``workdir`` and backtest it; the summary plus the panel's facts."""
    data_dir = generate(shape, workdir / shape, size=size, seed=seed)
    started = time.perf_counter()
    result = backtest(data_dir, models=models, folds=folds)
    row = summarize(shape, result, seconds=time.perf_counter() - started)
    row["generator"] = json.loads((data_dir / "synthetic_config.json").read_text())
    row["profile"] = (data_dir / "retail_forecast.toml").read_text()
    return row


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def shape_table(row: Mapping[str, Any]) -> str:
    """Markdown: one line per model and baseline, one column per fold (latest first), mean."""
    folds = list(row["folds"])
    head = "| name | " + " | ".join(f"F{i + 1} {start}" for i, start in enumerate(folds))
    lines = [head + " | mean |", "|---" * (len(folds) + 2) + "|"]
    for name in row["names"]:
        cells = [_fmt(row["folds"][start][name]) for start in folds]
        mean = _fmt(row["mean"][name])
        if name in (row["best_model"], row["best_naive"]):
            mean = f"**{mean}**"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: per shape the best model, the best naive baseline and the gains in %."""
    lines = [
        "| shape | best model (mean RMSLE) | best naive (mean RMSLE) | gain over best naive "
        "| gain over seasonal naive | >= 20 % over seasonal naive | wall |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mean, over_seasonal = row["mean"], row["improvement_over_seasonal_naive_pct"]
        lines.append(
            f"| {row['shape']} | {row['best_model']} {_fmt(mean[row['best_model']])} "
            f"| {row['best_naive']} {_fmt(mean[row['best_naive']])} "
            f"| {row['improvement_pct']:.1f} % | {over_seasonal:.1f} % "
            f"| {'yes' if over_seasonal >= 20 else 'no'} "
            f"| {row['wall_seconds']:.0f} s |"
        )
    return "\n".join(lines)


def report(rows: Sequence[Mapping[str, Any]]) -> str:
    """The whole markdown report: the summary, then each shape's fold table."""
    parts = [summary_table(rows)]
    parts += [f"\n{row['shape']}:\n\n{shape_table(row)}" for row in rows]
    return "\n".join(parts)


def run_bench(
    shapes: Sequence[str],
    *,
    size: Mapping[str, int | None],
    models: str = DEFAULT_MODELS,
    folds: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every shape in its own temporary directory, one after the other (2 cores are shared)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="rf-generalization-") as tmp:
        for shape in shapes:
            rows.append(
                run_shape(shape, Path(tmp), size=size, models=models, folds=folds, seed=seed)
            )
            print(f"{shape}: done in {rows[-1]['wall_seconds']:.0f} s", file=sys.stderr)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated shapes")
    parser.add_argument("--stores", type=int, default=None, help="generator default: 10")
    parser.add_argument("--families", type=int, default=None, help="generator default: 33")
    parser.add_argument("--days", type=int, default=None, help="train dates (shape's default)")
    parser.add_argument("--folds", type=int, default=None, help="default: the settings' folds")
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    size = {"stores": args.stores, "families": args.families, "days": args.days}
    started = time.time()
    rows = run_bench(shapes, size=size, models=args.models, folds=args.folds, seed=args.seed)
    print(report(rows))
    if args.out is not None:
        payload = {
            "command": " ".join(["bench/generalization.py", *(argv or sys.argv[1:])]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "size": size,
            "models": args.models,
            "shapes": rows,
        }
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
