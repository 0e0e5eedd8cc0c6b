"""ValidationReport: counts per input file, issues per rule, and why data is unusable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from retail_forecast.config import DataConfig

KEY_RULES: Final = ("duplicate_key", "unknown_store")


@dataclass
class FileReport:
    """Counts for one input file; ``rows_read == rows_kept + rows_quarantined`` always."""

    file: str
    rows_read: int
    rows_kept: int
    rows_quarantined: int
    issues: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "issues": dict(self.issues),
        }


@dataclass
class ValidationReport:
    """Everything validation and cleaning found; top-level row counts are the train file's."""

    files: dict[str, FileReport] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    families_domain: list[str] = field(default_factory=list)
    series: int = 0
    stores: int = 0
    families: int = 0
    first_date: str | None = None
    last_date: str | None = None
    panel_rows: int = 0
    filled_closed_rows: int = 0
    filled_open_rows: int = 0
    fingerprint: str | None = None
    # panel_shape: missing days inside series' histories that no closure explains, and the
    # closed days found (no row in the whole chain, an open flag, Closed rows of the holidays table)
    gaps: dict[str, Any] = field(default_factory=dict)
    closures: dict[str, Any] = field(default_factory=dict)

    def _train(self) -> FileReport:
        return self.files.get("train", FileReport("train", 0, 0, 0))

    @property
    def rows_read(self) -> int:
        return self._train().rows_read

    @property
    def rows_kept(self) -> int:
        return self._train().rows_kept

    @property
    def rows_quarantined(self) -> int:
        return self._train().rows_quarantined

    @property
    def issues(self) -> dict[str, int]:
        """Rows per rule over all files (a row with two rules counts under both)."""
        total: dict[str, int] = {}
        for report in self.files.values():
            for rule, count in report.issues.items():
                total[rule] = total.get(rule, 0) + count
        return total

    @property
    def is_usable(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "usable": self.is_usable,
            "errors": list(self.errors),
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "series": self.series,
            "stores": self.stores,
            "families": self.families,
            "first_date": self.first_date,
            "last_date": self.last_date,
            "panel_rows": self.panel_rows,
            "filled_closed_rows": self.filled_closed_rows,
            "filled_open_rows": self.filled_open_rows,
            "fingerprint": self.fingerprint,
            "gaps": dict(self.gaps),
            "closures": dict(self.closures),
            "issues": self.issues,
            "files": {name: report.to_dict() for name, report in self.files.items()},
        }


def budget_errors(reports: dict[str, FileReport], config: DataConfig) -> list[str]:
    """One-line reasons the data is unusable (empty list: usable)."""
    errors: list[str] = []
    for name, report in reports.items():
        share = report.rows_quarantined / report.rows_read if report.rows_read else 0.0
        if share > config.max_quarantine_share:
            errors.append(
                f"{name}: {report.rows_quarantined:,} of {report.rows_read:,} rows quarantined "
                f"({share:.2%}), over the {config.max_quarantine_share:.2%} budget"
            )
        broken = {r: report.issues[r] for r in KEY_RULES if report.issues.get(r)}
        if broken and config.fail_on_key_rules:
            what = ", ".join(f"{count:,} {rule}" for rule, count in broken.items())
            errors.append(f"{name}: key/referential rule failed ({what})")
    train = reports.get("train")
    if train is not None and train.rows_kept == 0:
        errors.append("train: no valid rows")
    return errors


def gap_text(gaps: dict[str, Any]) -> str:
    """One line for the gaps of a report ("none" when every series is whole)."""
    if not gaps.get("series"):
        return "none"
    longest = gaps["longest"]
    return (
        f"{gaps['series']:,} series, {gaps['missing_days']:,} missing days; longest "
        f"{longest['days']:,} days, store {longest['store_nbr']} {longest['family']}, "
        f"{longest['first_missing']} .. {longest['last_missing']}"
    )


def closure_text(closures: dict[str, Any]) -> str:
    """One line for the closed days a report found."""
    if not closures:
        return "none"
    parts = [f"{closures['chain_closed_days']} dates with no row in any series (closed)"]
    if closures.get("yearly"):
        parts.append("closed every year: " + ", ".join(closures["yearly"]))
    if closures.get("open_flag"):
        parts.append(
            f"open flag: {closures['open_flag_closed_rows']:,} closed rows on "
            f"{closures['open_flag_closed_dates']:,} dates ({closures['test_closed_rows']:,} "
            "in test)"
        )
    else:
        parts.append("no open flag")
    parts.append(f"{closures['holidays_closed_rows']} Closed holidays rows")
    parts.append(f"{closures.get('closed_store_days', 0):,} closed store-days without rows")
    return "; ".join(parts)
