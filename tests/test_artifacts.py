"""Bundle write/verify/read: promises 11, 12, 13, 22 and 23 of docs/RELIABILITY.md."""

from __future__ import annotations

import builtins
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import pickle
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
import xgboost as xgb

from retail_forecast import artifacts
from retail_forecast.artifacts import (
    CURRENT,
    MANIFEST,
    VERSION_PATTERN,
    BundleWriter,
    ModelBundle,
    list_versions,
    load_manifest,
    resolve_current,
    resolve_version,
    set_current,
    verify_bundle,
)
from retail_forecast.config import FEATURE_PRESETS, XGBoostConfig
from retail_forecast.errors import ArtifactError, UnknownVersionError
from retail_forecast.manifest import MODEL_TYPE, SCHEMA_VERSION, content_problem
from retail_forecast.models.xgboost import XGBForecaster

FINGERPRINT = hashlib.sha256(b"canonical frame").hexdigest()
METADATA = {
    "train_window": ["2017-01-01", "2017-08-15"],
    "feature_names": ["lag_1", "lag_7", "onpromotion"],
    "horizon": 16,
    "blend_weights": {"global": 0.6},
    "domain": {"stores": [1, 2], "families": ["BEVERAGES"], "onpromotion_max": 741},
}
XGB_FILE = "xgboost/model.ubj"
NN_FILE = "lstm/weights.safetensors"
PRE_FILE = "preprocessor_xgboost.json"
REF_FILE = "reference.parquet"
ROWS = np.arange(60, dtype=np.float32).reshape(20, 3) / 7


class Canary:
    """Unpickling this creates the canary file: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (builtins.open, (str(self.path), "w"))


def _save_models(directory: Path) -> None:
    """What the forecasters' save(directory) does: native files under the bundle dir."""
    target = ROWS.sum(axis=1)
    booster = xgb.train({"nthread": 1, "seed": 0}, xgb.DMatrix(ROWS, label=target), 3)
    (directory / "xgboost").mkdir()
    booster.save_model(directory / XGB_FILE)
    (directory / "lstm").mkdir()
    weights = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    safetensors.torch.save_file(weights, str(directory / NN_FILE))
    (directory / PRE_FILE).write_text(json.dumps({"features": ["a", "b", "c"]}))
    pd.DataFrame({"lag_1": [1.0, 2.0]}).to_parquet(directory / REF_FILE, index=False)


def _publish(root: Path, *, second: int = 0, **kwargs: Any) -> Path:
    created = dt.datetime(2026, 11, 26, 20, 30, second, tzinfo=dt.UTC)
    with BundleWriter(
        root,
        fingerprint=FINGERPRINT,
        metadata=METADATA,
        config={"xgboost": {"max_depth": 8}},
        metrics={"folds": [{"rmsle": 0.4}]},
        created_at=created,
        **kwargs,
    ) as writer:
        _save_models(writer.directory)
    assert writer.path is not None
    return writer.path


def load_models(bundle_dir: Path) -> tuple[xgb.Booster, dict[str, torch.Tensor]]:
    """The loader the models will provide: verify first, then deserialize."""
    verify_bundle(bundle_dir)
    booster = xgb.Booster()
    booster.load_model(bundle_dir / XGB_FILE)
    weights = safetensors.torch.load_file(str(bundle_dir / NN_FILE))
    return booster, weights


def _rewrite_manifest_entry(bundle: Path, name: str) -> None:
    """An attacker who can also rewrite the manifest: size and sha256 match the new file."""
    manifest = json.loads((bundle / MANIFEST).read_text())
    data = (bundle / name).read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (bundle / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def bundle(root: Path) -> Path:
    return _publish(root)


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"load_model": 0, "load_file": 0}
    real_load_model, real_load_file = xgb.Booster.load_model, safetensors.torch.load_file

    def load_model(self: xgb.Booster, fname: Any) -> None:
        calls["load_model"] += 1
        real_load_model(self, fname)

    def load_file(filename: Any, device: Any = "cpu") -> dict[str, torch.Tensor]:
        calls["load_file"] += 1
        return real_load_file(filename, device=device)

    monkeypatch.setattr(xgb.Booster, "load_model", load_model)
    monkeypatch.setattr(safetensors.torch, "load_file", load_file)
    return calls


# -- promise 12: round trip and corrupt bundles ------------------------------------------------


def test_p12_round_trip_same_predictions(root: Path, bundle: Path, spies: dict[str, int]) -> None:
    booster, weights = load_models(resolve_current(root))
    assert spies == {"load_model": 1, "load_file": 1}
    fresh = xgb.train({"nthread": 1, "seed": 0}, xgb.DMatrix(ROWS, label=ROWS.sum(axis=1)), 3)
    np.testing.assert_array_equal(booster.inplace_predict(ROWS), fresh.inplace_predict(ROWS))
    assert torch.equal(weights["w"], torch.arange(6, dtype=torch.float32).reshape(2, 3))

    opened = ModelBundle.open_current(root)
    assert opened.path == bundle.resolve()
    assert opened.version == "20261126t203000-" + FINGERPRINT[:8]
    assert VERSION_PATTERN.fullmatch(opened.version)
    assert opened.read_json("config.json") == {"xgboost": {"max_depth": 8}}
    assert opened.read_json("metrics.json") == {"folds": [{"rmsle": 0.4}]}
    assert opened.read_parquet(REF_FILE)["lag_1"].tolist() == [1.0, 2.0]


def test_p12_manifest_lists_every_file_with_checksums(bundle: Path) -> None:
    manifest = load_manifest(bundle)
    on_disk = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert sorted([*manifest.files, MANIFEST]) == on_disk
    for name, entry in manifest.files.items():
        data = (bundle / name).read_bytes()
        assert entry.size == len(data)
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
    raw = json.loads((bundle / MANIFEST).read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["model_type"] == MODEL_TYPE
    assert raw["data_fingerprint"] == FINGERPRINT
    assert raw["created_at"] == "2026-11-26T20:30:00Z"
    assert raw["metadata"] == METADATA
    assert {"python", "numpy", "pandas", "xgboost", "torch", "retail_forecast"} <= set(
        raw["library_versions"]
    )
    assert raw["git_sha"] is None or len(raw["git_sha"]) == 40


@pytest.mark.parametrize("name", [XGB_FILE, NN_FILE, PRE_FILE, REF_FILE, "metrics.json"])
def test_p12_flipped_byte_refused(bundle: Path, spies: dict[str, int], name: str) -> None:
    path = bundle / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"sha256.*modified") as info:
        load_models(bundle)
    assert name in str(info.value)
    assert spies == {"load_model": 0, "load_file": 0}


@pytest.mark.parametrize("name", [XGB_FILE, NN_FILE, REF_FILE])
def test_p12_truncated_file_refused(bundle: Path, spies: dict[str, int], name: str) -> None:
    path = bundle / name
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="truncated"):
        load_models(bundle)
    assert spies == {"load_model": 0, "load_file": 0}


@pytest.mark.parametrize("name", [XGB_FILE, NN_FILE, "config.json"])
def test_p12_missing_file_refused(bundle: Path, spies: dict[str, int], name: str) -> None:
    (bundle / name).unlink()
    with pytest.raises(ArtifactError, match="missing") as info:
        load_models(bundle)
    assert name in str(info.value)
    assert spies == {"load_model": 0, "load_file": 0}


def test_p12_missing_manifest_refused(bundle: Path, spies: dict[str, int]) -> None:
    (bundle / MANIFEST).unlink()
    with pytest.raises(ArtifactError, match="manifest"):
        load_models(bundle)
    assert spies == {"load_model": 0, "load_file": 0}


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("schema_version", 2, "schema_version"),
        ("schema_version", True, "schema_version"),
        ("model_type", "sklearn-pickle", "model_type"),
        ("files", [], "files"),
    ],
)
def test_p12_incompatible_manifest_refused(
    bundle: Path, spies: dict[str, int], field: str, value: Any, match: str
) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest[field] = value
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=match):
        load_models(bundle)
    assert spies == {"load_model": 0, "load_file": 0}


def test_p12_manifest_with_nan_or_duplicate_keys_refused(bundle: Path) -> None:
    text = (bundle / MANIFEST).read_text()
    (bundle / MANIFEST).write_text(text.replace('"horizon": 16', '"horizon": NaN'))
    with pytest.raises(ArtifactError, match="NaN is not valid JSON; numbers must be finite"):
        verify_bundle(bundle)
    (bundle / MANIFEST).write_text(text.replace('"horizon": 16', '"horizon": 16, "horizon": 8'))
    with pytest.raises(ArtifactError, match="repeats a key"):
        verify_bundle(bundle)


def test_p12_extra_file_ignored_with_warning_and_never_opened(
    bundle: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    extra = bundle / "lstm" / "extra.safetensors"
    extra.write_bytes(pickle.dumps(Canary(canary), protocol=4))
    opened: list[str] = []
    real_open = Path.open

    def spy_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy_open)
    with caplog.at_level(logging.WARNING, logger="retail_forecast.artifacts"):
        manifest = verify_bundle(bundle)
    assert "lstm/extra.safetensors" not in manifest.files
    assert "lstm/extra.safetensors" in caplog.text
    assert not any(path.endswith("extra.safetensors") for path in opened)
    assert any(path.endswith("model.ubj") for path in opened)  # the spy does see reads
    bundle_view = ModelBundle.open(bundle)
    with pytest.raises(ArtifactError, match="not listed"):
        bundle_view.path_of("lstm/extra.safetensors")
    assert not canary.exists()


def test_p12_extra_file_refused_in_strict_mode(bundle: Path) -> None:
    (bundle / "stray.json").write_text("{}")
    with pytest.raises(ArtifactError, match=r"not in the manifest.*stray\.json"):
        verify_bundle(bundle, allow_unlisted=False)


# -- promise 11: no pickle on a load path ------------------------------------------------------


@pytest.mark.parametrize("name", [PRE_FILE, NN_FILE, XGB_FILE, REF_FILE])
@pytest.mark.parametrize("rewrite_manifest", [False, True])
def test_p11_pickle_canary_refused_whatever_extension(
    bundle: Path, tmp_path: Path, spies: dict[str, int], name: str, rewrite_manifest: bool
) -> None:
    canary = tmp_path / "canary"
    (bundle / name).write_bytes(pickle.dumps(Canary(canary), protocol=4))
    if rewrite_manifest:
        _rewrite_manifest_entry(bundle, name)
    with pytest.raises(ArtifactError) as info:
        load_models(bundle)
    assert name in str(info.value)
    if rewrite_manifest:
        assert "pickle" in str(info.value)
    assert spies == {"load_model": 0, "load_file": 0}
    assert not canary.exists()


def test_p11_torch_pt_zip_disguised_as_safetensors_refused(
    bundle: Path, spies: dict[str, int]
) -> None:
    torch.save({"w": torch.zeros(2)}, bundle / NN_FILE)
    _rewrite_manifest_entry(bundle, NN_FILE)
    with pytest.raises(ArtifactError, match="zip archive"):
        load_models(bundle)
    assert spies == {"load_model": 0, "load_file": 0}


@pytest.mark.parametrize("name", ["model.pkl", "weights.pt", "model.joblib", "prep.json.pkl"])
def test_p11_extension_outside_allow_list_refused(bundle: Path, name: str) -> None:
    (bundle / name).write_text("{}")
    _rewrite_manifest_entry(bundle, name)
    with pytest.raises(ArtifactError, match="extension"):
        verify_bundle(bundle)


def test_p11_writer_refuses_pickles_and_nothing_is_published(root: Path, tmp_path: Path) -> None:
    def publish_with_pickle() -> None:
        with BundleWriter(root, fingerprint=FINGERPRINT) as writer:
            _save_models(writer.directory)
            (writer.directory / "extra.json").write_bytes(pickle.dumps(Canary(tmp_path / "c")))

    with pytest.raises(ArtifactError, match="pickle"):
        publish_with_pickle()
    assert list_versions(root) == []
    assert sorted(p.name for p in root.iterdir()) == []


def test_p11_safetensors_header_that_starts_with_0x80_is_accepted(tmp_path: Path) -> None:
    # A header length of 0x0280 makes the file start with b"\x80\x02", like a pickle; the
    # structure check must still accept a real safetensors file.
    pad = 0x280 - len(b'{"__metadata__":{"k":""}}')
    header = b'{"__metadata__":{"k":"' + b"a" * pad + b'"}}'
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    assert path.read_bytes()[:2] == b"\x80\x02"
    assert content_problem(path) is None
    assert safetensors.torch.load_file(str(path)) == {}


# -- promise 13: names never become paths ------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../outside.json",
        "lstm/../../outside.json",
        "/etc/passwd.json",
        "..\\outside.json",
        "C:\\Windows\\win.ini.json",
        ".hidden.json",
        "lstm//w.json",
        "m\x00.ubj",
        "．．／x.json",
    ],
)
def test_p13_traversal_names_in_manifest_refused(
    bundle: Path, spies: dict[str, int], name: str
) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"][name] = {"sha256": "0" * 64, "size": 2}
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unsafe file name"):
        load_models(bundle)
    assert spies == {"load_model": 0, "load_file": 0}


def test_p13_symlink_member_pointing_outside_refused(bundle: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.json"
    outside.write_bytes((bundle / PRE_FILE).read_bytes())  # same bytes: checksum would match
    (bundle / PRE_FILE).unlink()
    (bundle / PRE_FILE).symlink_to(outside)
    with pytest.raises(ArtifactError, match="outside the bundle"):
        verify_bundle(bundle)


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "..%2f",
        "%252e%252e%252f",
        "..\\",
        "/etc/passwd",
        "C:\\Windows\\win.ini",
        "m%00.ubj",
        "．．／",
        "http://169.254.169.254/latest",
        "s3://other-bucket/x",
        "file:///etc/passwd",
        "",
        "*",
        "a" * 10_000,
        "UPPER",
        "v1\n",
        "unpublished",
    ],
)
def test_p13_version_names_resolve_only_through_the_registry(bundle: Path, name: str) -> None:
    root = bundle.parent
    (root / "unpublished").mkdir()  # a directory without a manifest is not a version
    with pytest.raises(UnknownVersionError):
        resolve_version(root, name)
    assert resolve_version(root, bundle.name) == bundle.resolve()


def test_p13_current_pointing_outside_root_refused(bundle: Path, tmp_path: Path) -> None:
    root = bundle.parent
    outside = tmp_path / "elsewhere" / "v9"
    outside.mkdir(parents=True)
    (outside / MANIFEST).write_text("{}")
    (root / "v9").symlink_to(outside)
    for pointer in ["../elsewhere/v9", "v9", "/etc"]:
        (root / CURRENT).write_text(pointer + "\n")
        with pytest.raises(ArtifactError, match="does not name a published version"):
            resolve_current(root)
    assert list_versions(root) == [bundle.name]


# -- promise 22: atomic writes -----------------------------------------------------------------


def test_p22_exception_inside_writer_leaves_nothing(root: Path, bundle: Path) -> None:
    before = (root / CURRENT).read_text()
    staged: list[Path] = []

    def train_and_die() -> None:
        with BundleWriter(root, fingerprint="ab" * 8) as writer:
            _save_models(writer.directory)
            staged.append(writer.directory)
            raise RuntimeError("training died halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        train_and_die()
    (staging,) = staged
    assert not staging.exists()
    assert list_versions(root) == [bundle.name]
    assert sorted(p.name for p in root.iterdir()) == sorted([bundle.name, CURRENT])
    assert (root / CURRENT).read_text() == before
    verify_bundle(bundle)


def test_p22_enospc_while_writing_manifest_leaves_previous_intact(
    root: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = artifacts.write_json_atomic

    def failing(path: Path, obj: Any) -> None:
        if path.name == MANIFEST:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, obj)

    monkeypatch.setattr(artifacts, "write_json_atomic", failing)
    with pytest.raises(OSError, match="No space"):
        _publish(root, second=30)
    assert list_versions(root) == [bundle.name]
    assert sorted(p.name for p in root.iterdir()) == sorted([bundle.name, CURRENT])
    assert resolve_current(root) == bundle.resolve()


def test_p22_manifest_is_the_last_file_written(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    real = artifacts.write_json_atomic
    real_inventory = artifacts._inventory

    def recording(path: Path, obj: Any) -> None:
        written.append(path.name)
        real(path, obj)

    def inventory(staging: Path) -> Any:
        written.append("<hash every file>")
        return real_inventory(staging)

    monkeypatch.setattr(artifacts, "write_json_atomic", recording)
    monkeypatch.setattr(artifacts, "_inventory", inventory)
    _publish(root)
    assert written == ["config.json", "metrics.json", "<hash every file>", MANIFEST]


def test_p22_version_without_manifest_is_invisible(root: Path, bundle: Path) -> None:
    partial = root / "20261127t000000-deadbeef"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    assert list_versions(root) == [bundle.name]
    with pytest.raises(UnknownVersionError):
        set_current(root, partial.name)
    with pytest.raises(ArtifactError):
        verify_bundle(partial)


def test_p22_current_swap_is_atomic(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = _publish(root, second=1).name
    v2 = _publish(root, second=2).name
    assert resolve_current(root).name == v2
    seen: set[str] = set()
    stop = threading.Event()

    def read_pointer() -> None:
        while not stop.is_set():
            seen.add((root / CURRENT).read_text())

    reader = threading.Thread(target=read_pointer)
    reader.start()
    try:
        for i in range(200):
            set_current(root, v1 if i % 2 else v2)
    finally:
        stop.set()
        reader.join()
    assert seen <= {v1 + "\n", v2 + "\n"}

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "replace", failing_replace)
    before = (root / CURRENT).read_text()
    with pytest.raises(OSError, match="No space"):
        set_current(root, v1 if before == v2 + "\n" else v2)
    assert (root / CURRENT).read_text() == before
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


# -- promise 23: idempotent publish ------------------------------------------------------------


def test_p23_publishing_the_same_version_twice_is_a_noop(root: Path, bundle: Path) -> None:
    manifest_before = (bundle / MANIFEST).read_bytes()
    created = dt.datetime(2026, 11, 26, 20, 30, 0, tzinfo=dt.UTC)
    with BundleWriter(root, fingerprint=FINGERPRINT, created_at=created) as writer:
        _save_models(writer.directory)
    assert writer.path == bundle
    assert not writer.is_published_now
    assert list_versions(root) == [bundle.name]
    assert (bundle / MANIFEST).read_bytes() == manifest_before
    assert not [p for p in root.iterdir() if p.name.startswith(".staging-")]


def test_p23_bad_fingerprint_refused_before_any_work(root: Path) -> None:
    with pytest.raises(ArtifactError, match="fingerprint"), BundleWriter(root, fingerprint="../x"):
        pass
    assert not root.exists() or list(root.iterdir()) == []


def test_list_versions_oldest_first_and_current_follows_latest(root: Path) -> None:
    names = [_publish(root, second=s).name for s in (5, 3, 4)]
    assert list_versions(root) == sorted(names)
    assert resolve_current(root).name == names[-1]
    assert resolve_version(root, names[0]).name == names[0]


def test_p23_rerun_after_crash_before_pointer_swap_sets_current(root: Path) -> None:
    old = _publish(root, second=1).name
    new = _publish(root, second=2, make_current=False).name  # "killed" before set_current
    assert resolve_current(root).name == old
    _publish(root, second=2)  # the rerun publishes nothing new ...
    assert list_versions(root) == [old, new]
    assert resolve_current(root).name == new  # ... but ends where an uninterrupted run ends


WRITER = """
import sys, time
from pathlib import Path
from retail_forecast.artifacts import BundleWriter
with BundleWriter(Path(sys.argv[1]), fingerprint=sys.argv[2]) as writer:
    (writer.directory / "config.json").write_text("{}")
    print(writer.directory, flush=True)
    time.sleep(120)
"""


def _start_writer(root: Path) -> tuple[subprocess.Popen[str], Path]:
    """A writer in another process, inside its ``with`` block; returns it and its staging dir."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), FINGERPRINT], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    for item in [path, *path.rglob("*")]:
        os.utime(item, (when, when))


def test_p22_a_killed_writers_staging_goes_at_the_next_write_and_a_live_ones_stays(
    root: Path,
) -> None:
    killed, killed_dir = _start_writer(root)
    killed.kill()  # SIGKILL: no `finally`, the staging directory stays behind
    killed.wait(10)
    live, live_dir = _start_writer(root)
    try:
        for staging in (killed_dir, live_dir):
            assert staging.name.startswith(".staging-")
            _age(staging, 3600)  # the next write starts after a training: both look old
        published = _publish(root)
        assert not killed_dir.exists()
        assert (live_dir / "config.json").read_text() == "{}"  # its lock protects it
        assert list_versions(root) == [published.name]
    finally:
        live.kill()
        live.wait(10)


def test_p22_every_bundle_file_is_0600_whatever_wrote_it(root: Path) -> None:
    old = os.umask(0o022)  # what a library writing its own file (XGBoost) honours: 0644
    try:
        bundle = _publish(root)
    finally:
        os.umask(old)
    modes = {
        p.relative_to(bundle).as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in bundle.rglob("*")
        if p.is_file()
    }
    assert XGB_FILE in modes
    assert set(modes.values()) == {0o600}, modes


def test_p22_xgboost_writes_its_model_0600(tmp_path: Path) -> None:
    dates = pd.date_range(end="2017-08-15", periods=60, freq="D")
    history = pd.DataFrame(
        {
            "date": dates.repeat(2),
            "store_nbr": np.tile(np.array([1, 2], dtype=np.int64), 60),
            "family": pd.Categorical(["FAM A"] * 120, categories=["FAM A"]),
            "sales": np.arange(120, dtype=np.float64) % 17,
            "onpromotion": np.zeros(120, dtype=np.int64),
            "is_closed": False,
        }
    )
    config = XGBoostConfig(n_estimators=3, early_stopping_rounds=2, nthread=1)
    model = XGBForecaster(config, FEATURE_PRESETS["required"], horizon=16).fit(history)
    old = os.umask(0o022)
    try:
        model.save(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / XGB_FILE).stat().st_mode) == 0o600


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "..%2f", "．．／", "a" * 10_000])
def test_p13_version_lookup_opens_nothing(
    bundle: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    opened: list[str] = []
    real_open = Path.open

    def spy_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy_open)
    with pytest.raises(UnknownVersionError):
        resolve_version(bundle.parent, name)
    assert opened == []
