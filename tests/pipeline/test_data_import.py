"""import_dataset / load_processed / CLI: atomic (P22), idempotent (P23), exit codes."""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from retail_forecast.cli import app
from retail_forecast.config import DataConfig
from retail_forecast.errors import DataValidationError
from retail_forecast.pipeline.data_import import import_dataset, load_processed, run_id_for
from retail_forecast.utils.io import sha256_file


@pytest.fixture
def config(tmp_path: Path) -> DataConfig:
    return DataConfig(processed_dir=tmp_path / "processed", quarantine_dir=tmp_path / "quarantine")


def test_import_writes_processed_and_load_round_trips(tiny_kaggle, config: DataConfig) -> None:
    built = import_dataset(tiny_kaggle.write(), config)
    names = sorted(p.name for p in config.processed_dir.iterdir())
    assert names == [
        "holidays.parquet",
        "oil.parquet",
        "sales.parquet",
        "stores.parquet",
        "summary.json",
        "test.parquet",
        "transactions.parquet",
    ]
    sales, test = load_processed(config.processed_dir)
    pd.testing.assert_frame_equal(sales, built.sales)
    assert test is not None
    assert built.test is not None
    pd.testing.assert_frame_equal(test, built.test)
    summary = json.loads((config.processed_dir / "summary.json").read_text())
    assert summary["content"]["fingerprint"] == built.fingerprint
    assert summary["content"]["report"]["rows_kept"] == 96
    assert not config.quarantine_dir.exists()  # nothing quarantined, nothing written


def test_p23_reimport_same_input_rewrites_nothing(
    tiny_kaggle, config: DataConfig, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tiny_kaggle.write()
    first = import_dataset(data_dir, config)
    files = sorted(config.processed_dir.iterdir())
    stats = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}
    with caplog.at_level(logging.INFO):
        second = import_dataset(data_dir, config)
    assert second.fingerprint == first.fingerprint
    assert second.written is False
    assert first.written is True
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files} == stats
    assert sorted(config.processed_dir.iterdir()) == files
    assert "unchanged" in caplog.text


def test_p23_changed_input_is_rewritten_and_run_id_follows_input(
    tiny_kaggle, config: DataConfig
) -> None:
    data_dir = tiny_kaggle.write()
    first = import_dataset(data_dir, config)
    run_id = run_id_for(data_dir, config)
    assert run_id == run_id_for(data_dir, config)
    tiny_kaggle.train[40] = tiny_kaggle.train[40].rsplit(",", 2)[0] + ",123.0,0"
    tiny_kaggle.write()
    second = import_dataset(data_dir, config)
    assert second.written is True
    assert second.fingerprint != first.fingerprint
    assert load_processed(config.processed_dir)[0]["sales"].max() == 123.0
    assert run_id_for(data_dir, config) != run_id


def _changed_input(tiny_kaggle, config: DataConfig) -> tuple[Path, str]:
    data_dir = tiny_kaggle.write()
    import_dataset(data_dir, config)
    old = sha256_file(config.processed_dir / "sales.parquet")
    tiny_kaggle.train[40] = tiny_kaggle.train[40].rsplit(",", 2)[0] + ",55.0,0"
    tiny_kaggle.write()
    return data_dir, old


def _assert_old_intact(config: DataConfig, old_sha: str) -> None:
    assert sha256_file(config.processed_dir / "sales.parquet") == old_sha
    leftovers = [p.name for p in config.processed_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    load_processed(config.processed_dir)  # still consistent with its summary


def test_p22_writer_raising_halfway_leaves_old_file(
    tiny_kaggle, config: DataConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, old = _changed_input(tiny_kaggle, config)

    def half_write(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_bytes(b"PAR1 half a file")
        raise RuntimeError("disk went away halfway")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_write)
    with pytest.raises(RuntimeError, match="halfway"):
        import_dataset(data_dir, config)
    _assert_old_intact(config, old)


def test_p22_enospc_leaves_old_file_and_no_new_final_file(
    tiny_kaggle, config: DataConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data_dir, old = _changed_input(tiny_kaggle, config)

    def no_space(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_bytes(b"PAR1")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", no_space)
    with pytest.raises(OSError, match="No space") as info:
        import_dataset(data_dir, config)
    assert info.value.errno == errno.ENOSPC
    _assert_old_intact(config, old)
    fresh = DataConfig(processed_dir=tmp_path / "fresh", quarantine_dir=tmp_path / "q")
    with pytest.raises(OSError, match="No space"):
        import_dataset(data_dir, fresh)
    assert list(fresh.processed_dir.iterdir()) == []


def test_load_processed_refuses_a_changed_file(tiny_kaggle, config: DataConfig) -> None:
    import_dataset(tiny_kaggle.write(), config)
    path = config.processed_dir / "sales.parquet"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DataValidationError, match="changed since import"):
        load_processed(config.processed_dir)


def test_unusable_import_writes_quarantine_not_processed(tiny_kaggle, config: DataConfig) -> None:
    tiny_kaggle.train[3] = "3,2016-12-20,2,AUTOMOTIVE,-1.0,0"
    data_dir = tiny_kaggle.write()
    with pytest.raises(DataValidationError, match="budget"):
        import_dataset(data_dir, config)
    assert not config.processed_dir.exists()
    quarantine = config.quarantine_dir / run_id_for(data_dir, config) / "quarantine.csv"
    rows = pd.read_csv(quarantine)
    assert rows[["source_file", "source_line", "rule"]].values.tolist() == [
        ["train.csv", 5, "negative_sales"]
    ]


# --- CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env from the checkout; relative dirs land in tmp
    monkeypatch.setenv("RF_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("RF_DATA__PROCESSED_DIR", str(tmp_path / "processed"))
    monkeypatch.setenv("RF_DATA__QUARANTINE_DIR", str(tmp_path / "quarantine"))
    return tmp_path


def test_cli_validate_ok_and_json(tiny_kaggle, cli_env: Path) -> None:
    data_dir = str(tiny_kaggle.write())
    runner = CliRunner()
    result = runner.invoke(app, ["data", "validate", "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    assert "fingerprint" in result.stdout
    result = runner.invoke(app, ["data", "validate", "--data-dir", data_dir, "--json"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["usable"] is True
    assert (payload["rows_read"], payload["series"], payload["issues"]) == (96, 6, {})
    assert not (cli_env / "processed").exists()


def test_cli_validate_unusable_exits_2_and_still_counts(tiny_kaggle, cli_env: Path) -> None:
    tiny_kaggle.train[3] = "3,2016-12-20,2,AUTOMOTIVE,-1.0,0"
    data_dir = str(tiny_kaggle.write())
    result = CliRunner().invoke(app, ["data", "validate", "--data-dir", data_dir, "--json"])
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert (payload["rows_read"], payload["rows_kept"], payload["rows_quarantined"]) == (96, 95, 1)
    assert payload["issues"] == {"negative_sales": 1}
    assert "data unusable" in result.stderr


def test_cli_validate_missing_required_column_exits_2_one_line(tiny_kaggle, cli_env: Path) -> None:
    tiny_kaggle.train_header = "id,date,store_nbr,family,sale,onpromotion"
    data_dir = str(tiny_kaggle.write())
    result = CliRunner().invoke(app, ["data", "validate", "--data-dir", data_dir])
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "missing required column(s) sales" in message
    assert len(message.splitlines()) == 1
    assert "Traceback" not in result.output


def test_cli_import_then_unchanged(tiny_kaggle, cli_env: Path) -> None:
    data_dir = str(tiny_kaggle.write())
    runner = CliRunner()
    first = runner.invoke(app, ["data", "import", "--data-dir", data_dir])
    assert first.exit_code == 0, first.output
    assert (cli_env / "processed" / "sales.parquet").exists()
    second = runner.invoke(app, ["data", "import", "--data-dir", data_dir])
    assert second.exit_code == 0
    assert "unchanged" in second.stdout


def test_cli_import_unusable_exits_2(tiny_kaggle, cli_env: Path) -> None:
    tiny_kaggle.train.append(tiny_kaggle.train[0])
    result = CliRunner().invoke(app, ["data", "import", "--data-dir", str(tiny_kaggle.write())])
    assert result.exit_code == 2
    assert "duplicate_key" in result.stderr
    assert not (cli_env / "processed").exists()
