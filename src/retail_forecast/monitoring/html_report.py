"""Self-contained HTML monitoring report: drift, accuracy over time, worst series, quantile bands.

Plots are inline SVG written here (no matplotlib at runtime, no external files or scripts), so
the report is one file that opens anywhere.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from retail_forecast.monitoring.accuracy import ACTUAL, PREDICTION, MonitoringStatus
from retail_forecast.monitoring.coverage import CoverageStatus, central_pairs, level_columns
from retail_forecast.monitoring.drift import DriftReport
from retail_forecast.schema import DATE, FAMILY, STORE
from retail_forecast.utils.io import write_text_atomic

logger = logging.getLogger(__name__)

WIDTH, HEIGHT, PAD = 760, 260, 48
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:980px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.bad{color:#b00020;font-weight:600}.ok{color:#1b7a1b}svg{background:#fafafa;margin:6px 0}
"""


def _esc(value: object) -> str:
    return html.escape(str(value))


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "" if not math.isfinite(value) else f"{value:.4f}"
    return _esc(value)


def _table(frame: pd.DataFrame, *, max_rows: int = 60) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).itertuples(index=False):
        body.append("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>")
    more = f"<p>{len(frame) - max_rows} more rows not shown</p>" if len(frame) > max_rows else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def svg_bars(labels: Sequence[str], values: Sequence[float], *, flagged: Sequence[bool]) -> str:
    """Horizontal bars of statistic / threshold per feature, with the 1.0 threshold line."""
    row_h, left = 20, 210
    height = PAD + row_h * max(len(labels), 1)
    finite = [v for v in values if math.isfinite(v)]
    top = max([1.5, *finite]) * 1.05
    scale = (WIDTH - left - 20) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}">']
    for i, (label, value, bad) in enumerate(zip(labels, values, flagged, strict=True)):
        y = 10 + i * row_h
        width = scale * value if math.isfinite(value) else 0.0
        color = "#d62728" if bad else "#1f77b4"
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" font-size="12" text-anchor="end">'
            f"{_esc(label)}</text>"
        )
        parts.append(
            f'<rect x="{left}" y="{y + 2}" width="{width:.1f}" height="{row_h - 6}" '
            f'fill="{color}"><title>{_esc(label)}: {value:.3f}</title></rect>'
        )
    x1 = left + scale
    parts.append(
        f'<line x1="{x1:.1f}" x2="{x1:.1f}" y1="4" y2="{height - PAD + 14}" '
        'stroke="#222" stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<text x="{x1:.1f}" y="{height - 12}" font-size="12" text-anchor="middle">'
        "threshold (statistic / threshold = 1)</text></svg>"
    )
    return "".join(parts)


def svg_lines(lines: dict[str, pd.Series], *, y_label: str) -> str:
    """Line chart of date-indexed series (one polyline each) with axes and a small legend."""
    if not lines:
        return "<p>no data</p>"
    xs = pd.DatetimeIndex(sorted({d for s in lines.values() for d in s.index}))
    values = np.concatenate([s.to_numpy(dtype=np.float64) for s in lines.values()])
    values = values[np.isfinite(values)]
    y_max = float(values.max()) * 1.05 if len(values) and values.max() > 0 else 1.0
    span = max((xs[-1] - xs[0]).days, 1)

    def point(day: pd.Timestamp, value: float) -> str:
        x = PAD + (WIDTH - 2 * PAD) * (day - xs[0]).days / span
        y = HEIGHT - PAD + 10 - (HEIGHT - PAD) * value / y_max
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 20}">']
    base = HEIGHT - PAD + 10
    parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{base}" y2="{base}" stroke="#999"/>')
    parts.append(f'<text x="4" y="14" font-size="12">{_esc(y_label)} (max {y_max:.3g})</text>')
    parts.append(f'<text x="{PAD}" y="{base + 16}" font-size="11">{xs[0]:%Y-%m-%d}</text>')
    parts.append(
        f'<text x="{WIDTH - PAD}" y="{base + 16}" font-size="11" text-anchor="end">'
        f"{xs[-1]:%Y-%m-%d}</text>"
    )
    for i, (name, series) in enumerate(lines.items()):
        color = PALETTE[i % len(PALETTE)]
        days = pd.DatetimeIndex(series.index)
        vals = series.to_numpy(dtype=np.float64)
        pts = " ".join(point(d, v) for d, v in zip(days, vals, strict=True) if math.isfinite(v))
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}">'
            f"<title>{_esc(name)}</title></polyline>"
        )
        if i < 10:
            y = HEIGHT + 14
            parts.append(
                f'<text x="{PAD + 150 * (i % 5)}" y="{y - 14 * (i // 5)}" '
                f'font-size="11" fill="{color}">{_esc(name)[:22]}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class QuantileSection:
    """The served quantiles: coverage status and ``PredictionLog.bands()`` rows to plot."""

    coverage: CoverageStatus | None
    bands: pd.DataFrame | None


def svg_bands(rows: pd.DataFrame) -> str:
    """One series: a shaded band per central interval (wider: lighter), point and actual lines.

    ``rows``: date-sorted, with ``prediction``, ``actual`` and one float column per level.
    """
    days = pd.DatetimeIndex(rows[DATE])
    pairs = central_pairs(level_columns(rows))
    tops = [rows[ACTUAL].max(), rows[PREDICTION].max(), *(rows[hi].max() for _, hi in pairs)]
    finite = [float(v) for v in tops if math.isfinite(float(v))]
    y_max = max([*finite, 0.0]) * 1.05 or 1.0
    span = max((days[-1] - days[0]).days, 1)

    def xy(day: pd.Timestamp, value: float) -> str:
        x = PAD + (WIDTH - 2 * PAD) * (day - days[0]).days / span
        return f"{x:.1f},{HEIGHT - PAD + 10 - (HEIGHT - PAD) * value / y_max:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 20}">']
    for i, (lo, hi) in enumerate(reversed(pairs)):  # widest first, narrower drawn on top
        keep = rows[[lo, hi]].notna().all(axis=1).to_numpy()
        upper = [xy(d, v) for d, v in zip(days[keep], rows[hi][keep], strict=True)]
        lower = [xy(d, v) for d, v in zip(days[keep], rows[lo][keep], strict=True)]
        opacity = 0.18 + 0.17 * i
        parts.append(
            f'<polygon fill="#1f77b4" fill-opacity="{opacity:.2f}" stroke="none" '
            f'points="{" ".join(upper + lower[::-1])}"><title>{hi - lo:.0%} interval '
            f"({lo:g}-{hi:g})</title></polygon>"
        )
    for name, color in ((PREDICTION, "#1f77b4"), (ACTUAL, "#d62728")):
        pts = " ".join(xy(d, v) for d, v in zip(days, rows[name], strict=True) if math.isfinite(v))
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}">'
            f"<title>{name}</title></polyline>"
        )
    parts.append(
        f'<text x="4" y="14" font-size="12">sales (max {y_max:.3g}); blue: forecast and bands, '
        f'red: actual</text><text x="{PAD}" y="{HEIGHT + 6}" font-size="11">{days[0]:%Y-%m-%d}'
        f'</text><text x="{WIDTH - PAD}" y="{HEIGHT + 6}" font-size="11" text-anchor="end">'
        f"{days[-1]:%Y-%m-%d}</text></svg>"
    )
    return "".join(parts)


def _quantile_section(section: QuantileSection | None) -> str:
    coverage = section.coverage if section else None
    parts = ["<h2>Quantile coverage</h2>"]
    if coverage is None or not coverage.intervals:
        message = coverage.message if coverage else "not computed"
        return f"{parts[0]}<p>{_esc(message or 'no quantiles served')}</p>"
    css = "bad" if coverage.alert else "ok"
    parts.append(
        f'<p>status <span class="{css}">{_esc(coverage.status)}</span>: '
        f"{_esc(coverage.message)}</p>"
    )
    table = pd.DataFrame(
        [
            (f"{i.lower_level:g}-{i.upper_level:g}", i.nominal, i.coverage, i.n, i.status)
            for i in coverage.intervals
        ],
        columns=["interval", "nominal", "coverage", "rows", "status"],
    )
    parts.append(_table(table))
    bands = section.bands if section else None
    if bands is not None and not bands.empty:
        parts.append("<p>forecast bands vs actuals: the series most often outside their band</p>")
        for (store, family), rows in bands.groupby([STORE, FAMILY], sort=False):
            parts.append(f"<h3>store {_esc(store)}, {_esc(family)}</h3>")
            parts.append(svg_bands(rows.sort_values(DATE)))
    return "".join(parts)


def _drift_section(drift: DriftReport | None) -> str:
    if drift is None:
        return "<h2>Drift</h2><p>not computed (no data window given)</p>"
    tested = [f for f in drift.features if f.statistic is not None]
    bars = svg_bars(
        [f"{f.feature} ({f.test})" for f in tested],
        [f.statistic / f.threshold for f in tested if f.statistic is not None],
        flagged=[f.drifted for f in tested],
    )
    features = pd.DataFrame(
        [
            (f.feature, f.test, f.statistic, f.threshold, f.status, f.n_current)
            for f in drift.features
        ],
        columns=["feature", "test", "statistic", "threshold", "status", "rows"],
    )
    checks = pd.DataFrame(
        [
            (c.name, c.reference, c.current, c.statistic, c.threshold, c.status)
            for c in drift.checks
        ],
        columns=["check", "reference", "current", "statistic", "threshold", "status"],
    )
    css = "bad" if drift.status != "ok" else "ok"
    window = " .. ".join(drift.window) if drift.window else "n/a"
    ref = " .. ".join(str(d) for d in drift.reference_window)
    return (
        f'<h2>Drift: <span class="{css}">{_esc(drift.status)}</span></h2>'
        f"<p>window {_esc(window)} ({drift.current_rows:,} rows) vs reference {_esc(ref)} "
        f"({drift.reference_rows:,} rows)</p>{bars}{_table(features)}{_table(checks)}"
    )


def _accuracy_section(accuracy: pd.DataFrame | None, status: MonitoringStatus | None) -> str:
    parts = ["<h2>Forecast accuracy</h2>"]
    if status is not None:
        css = "bad" if status.alert else "ok"
        parts.append(
            f'<p>status <span class="{css}">{_esc(status.status)}</span>: '
            f"{_esc(status.message)} (model version {_esc(status.model_version)})</p>"
        )
    if accuracy is None or accuracy.empty:
        parts.append("<p>no scored predictions yet</p>")
        return "".join(parts)
    work = accuracy.assign(sq=accuracy["rmsle"] ** 2 * accuracy["n"])
    per_family = work.groupby(FAMILY).agg(sq=("sq", "sum"), n=("n", "sum"))
    per_family["rmsle"] = np.sqrt(per_family["sq"] / per_family["n"])
    per_family = per_family.sort_values("rmsle", ascending=False)
    shown = list(per_family.index[:10])
    lines = {
        str(fam): accuracy[accuracy[FAMILY] == fam].set_index(DATE)["rmsle"].sort_index()
        for fam in shown
    }
    parts.append("<p>RMSLE per target day, the 10 families with the highest RMSLE</p>")
    parts.append(svg_lines(lines, y_label="RMSLE"))
    parts.append(_table(per_family.reset_index()[[FAMILY, "rmsle", "n"]]))
    return "".join(parts)


def _worst_section(worst: pd.DataFrame | None) -> str:
    if worst is None or worst.empty:
        return "<h2>Worst series</h2><p>no scored predictions yet</p>"
    parts = ["<h2>Worst series: forecast vs actual (freshest forecast per day)</h2>"]
    for (store, family), rows in worst.groupby([STORE, FAMILY], sort=False):
        rows = rows.set_index(DATE).sort_index()
        parts.append(f"<h3>store {_esc(store)}, {_esc(family)}</h3>")
        parts.append(
            svg_lines({"forecast": rows[PREDICTION], "actual": rows[ACTUAL]}, y_label="sales")
        )
    return "".join(parts)


def write_report(
    path: Path,
    *,
    drift: DriftReport | None,
    accuracy: pd.DataFrame | None,
    worst_series: pd.DataFrame | None,
    status: MonitoringStatus | None = None,
    title: str = "retail_forecast monitoring",
    quantiles: QuantileSection | None = None,
) -> Path:
    """Write the HTML report atomically and return its path.

    ``accuracy``: rows per (date, family) with rmsle and n (``PredictionLog.accuracy(by=[
    "date", "family"])``); ``worst_series``: ``PredictionLog.worst_series()``; ``quantiles``:
    the coverage status and ``PredictionLog.bands()`` (bands drawn when the log holds any).
    """
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"<h1>{_esc(title)}</h1><p>generated {created}</p>"
        + _drift_section(drift)
        + _accuracy_section(accuracy, status)
        + _worst_section(worst_series)
        + _quantile_section(quantiles)
    )
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n"
    )
    write_text_atomic(Path(path), page)
    logger.info("monitoring report written path=%s bytes=%d", path, len(page))
    return Path(path)
