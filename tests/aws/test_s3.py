"""Bundles on a real S3-compatible server (moto on 127.0.0.1): publish, load, failure modes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest, AWSResponse

from retail_forecast.artifacts import ModelBundle, resolve_current
from retail_forecast.aws.env import make_s3_client
from retail_forecast.aws.s3 import download_bundle, upload_bundle
from retail_forecast.errors import ArtifactError
from retail_forecast.utils.io import sha256_file

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PREFIX = "team/forecast"


def _listed(bundle: Path) -> dict[str, str]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    return {name: entry["sha256"] for name, entry in manifest["files"].items()}


def test_upload_download_round_trip_verifies(
    s3: Any, bucket: str, tmp_path: Path, bundle_factory: Callable[..., Path]
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")
    published = upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3)

    assert published.is_new
    assert published.uri == f"s3://{bucket}/{PREFIX}/models/{bundle.name}/model.tar.gz"
    pointer = s3.get_object(Bucket=bucket, Key=f"{PREFIX}/models/current")["Body"].read()
    assert pointer == f"{bundle.name}\n".encode()

    local = download_bundle(f"s3://{bucket}/{PREFIX}", tmp_path / "cache", client=s3)
    assert local == tmp_path / "cache" / bundle.name
    opened = ModelBundle.open(local, allow_unlisted=False)
    assert opened.version == bundle.name
    assert _listed(local) == _listed(bundle)
    assert sha256_file(local / "xgboost" / "model.ubj") == sha256_file(
        bundle / "xgboost" / "model.ubj"
    )


def test_download_by_version_uri_and_make_current(
    s3: Any, bucket: str, tmp_path: Path, bundle_factory: Callable[..., Path]
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")
    upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3, make_current=False)
    uri = f"s3://{bucket}/{PREFIX}/models/{bundle.name}/model.tar.gz"
    local = download_bundle(uri, tmp_path / "root", client=s3, make_current=True)
    assert resolve_current(tmp_path / "root") == local.resolve()


def test_tarball_is_deterministic(
    s3: Any, bucket: str, tmp_path: Path, bundle_factory: Callable[..., Path]
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")
    first = upload_bundle(bundle, bucket=bucket, prefix="a", client=s3)
    second = upload_bundle(bundle, bucket=bucket, prefix="b", client=s3)
    assert first.sha256 == second.sha256
    assert first.size == second.size


def test_p22_manifest_put_is_last_and_conditional(
    s3: Any, bucket: str, tmp_path: Path, bundle_factory: Callable[..., Path], recorder: Any
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")
    upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3)

    base = f"/{bucket}/{PREFIX}/models/{bundle.name}"
    assert recorder.puts() == [
        f"{base}/model.tar.gz",
        f"{base}/manifest.json",
        f"/{bucket}/{PREFIX}/models/current",
    ]
    manifest_put = next(s for s in recorder.sends if s[:2] == ("PUT", f"{base}/manifest.json"))
    assert manifest_put[2].get("If-None-Match") == "*"
    tar_put = next(s for s in recorder.sends if s[:2] == ("PUT", f"{base}/model.tar.gz"))
    assert "x-amz-checksum-sha256" in {k.lower() for k in tar_put[2]} or any(
        "sha256" in v.lower() for k, v in tar_put[2].items() if "checksum" in k.lower()
    )


def test_p22_interrupted_upload_leaves_no_readable_bundle(
    s3: Any, bucket: str, tmp_path: Path, bundle_factory: Callable[..., Path]
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")

    def crash_after_tarball(http_response: AWSResponse, **_: Any) -> None:
        if http_response.url.endswith("/model.tar.gz") and http_response.status_code == 200:
            raise ConnectionAbortedError("killed right after the tarball PUT")

    s3.meta.events.register("after-call.s3.PutObject", crash_after_tarball)
    with pytest.raises(ConnectionAbortedError):
        upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3)

    base = f"{PREFIX}/models/{bundle.name}"
    s3.head_object(Bucket=bucket, Key=f"{base}/model.tar.gz")  # the half is there ...
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):  # ... but invisible
        download_bundle(f"s3://{bucket}/{base}", tmp_path / "cache", client=s3)
    with pytest.raises(ArtifactError, match="no current version pointer"):
        download_bundle(f"s3://{bucket}/{PREFIX}", tmp_path / "cache", client=s3)
    assert not (tmp_path / "cache" / bundle.name).exists()


def test_p23_second_publish_uploads_nothing(
    s3: Any, bucket: str, tmp_path: Path, bundle_factory: Callable[..., Path], recorder: Any
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")
    upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3)
    recorder.sends.clear()

    again = upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3)

    assert not again.is_new
    assert recorder.puts() == []


def test_same_version_other_contents_refused(
    s3: Any, bucket: str, tmp_path: Path, bundle_factory: Callable[..., Path]
) -> None:
    first = bundle_factory(tmp_path / "one", seed=0)
    other = bundle_factory(tmp_path / "two", seed=1)
    assert first.name == other.name  # same version name, different model
    upload_bundle(first, bucket=bucket, prefix=PREFIX, client=s3)
    with pytest.raises(ArtifactError, match="different contents"):
        upload_bundle(other, bucket=bucket, prefix=PREFIX, client=s3)
    local = download_bundle(f"s3://{bucket}/{PREFIX}", tmp_path / "cache", client=s3)
    assert _listed(local) == _listed(first)


def test_tampered_tarball_refused(
    s3: Any, bucket: str, tmp_path: Path, bundle_factory: Callable[..., Path]
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")
    published = upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3)
    key = published.uri.removeprefix(f"s3://{bucket}/")
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=io.BytesIO(bytes(data)))

    with pytest.raises(ArtifactError, match="does not match its manifest"):
        download_bundle(f"s3://{bucket}/{PREFIX}", tmp_path / "cache", client=s3)
    assert not (tmp_path / "cache" / bundle.name).exists()
    assert not [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]


def test_p27_slowdown_retried_below_three(
    s3: Any,
    bucket: str,
    tmp_path: Path,
    bundle_factory: Callable[..., Path],
    recorder: Any,
    error_response: Callable[[AWSRequest, int, str], AWSResponse],
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")
    tar_sends: list[int] = []

    def slow_down_twice(request: AWSRequest, _: int) -> AWSResponse | None:
        if request.method == "PUT" and request.url.endswith("/model.tar.gz"):
            tar_sends.append(1)
            if len(tar_sends) <= 2:
                return error_response(request, 503, "SlowDown")
        return None

    recorder.inject = slow_down_twice
    published = upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3)

    assert len(tar_sends) == 3
    local = download_bundle(f"s3://{bucket}/{PREFIX}", tmp_path / "cache", client=s3)
    assert ModelBundle.open(local).version == published.version


def test_p27_slowdown_three_times_fails_clearly(
    s3: Any,
    bucket: str,
    tmp_path: Path,
    bundle_factory: Callable[..., Path],
    recorder: Any,
    error_response: Callable[[AWSRequest, int, str], AWSResponse],
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")

    def always_slow_down(request: AWSRequest, _: int) -> AWSResponse | None:
        if request.method == "PUT" and request.url.endswith("/model.tar.gz"):
            return error_response(request, 503, "SlowDown")
        return None

    recorder.inject = always_slow_down
    with pytest.raises(ArtifactError, match=r"SlowDown .* after 3 attempt\(s\)"):
        upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3)

    tar_puts = [p for p in recorder.puts() if p.endswith("/model.tar.gz")]
    assert len(tar_puts) == 3
    assert not [p for p in recorder.puts() if p.endswith("/manifest.json")]


def test_p27_access_denied_sends_once(
    s3: Any,
    bucket: str,
    tmp_path: Path,
    recorder: Any,
    error_response: Callable[[AWSRequest, int, str], AWSResponse],
) -> None:
    recorder.inject = lambda request, _: error_response(request, 403, "AccessDenied")
    with pytest.raises(ArtifactError, match="AccessDenied"):
        download_bundle(f"s3://{bucket}/{PREFIX}", tmp_path / "cache", client=s3)
    assert len(recorder.sends) == 1


def test_p27_no_such_key_fails_fast(s3: Any, bucket: str, tmp_path: Path, recorder: Any) -> None:
    with pytest.raises(ArtifactError, match="no current version pointer"):
        download_bundle(f"s3://{bucket}/nothing-here", tmp_path / "cache", client=s3)
    assert len(recorder.sends) == 1


def test_upload_refuses_corrupt_bundle(
    s3: Any, bucket: str, tmp_path: Path, bundle_factory: Callable[..., Path], recorder: Any
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")
    (bundle / "preprocessor_xgboost.json").write_text('{"features": []}')
    with pytest.raises(ArtifactError, match=r"preprocessor_xgboost\.json"):
        upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3)
    assert recorder.sends == []


def _race_on_manifest_put(publish_other: Callable[[], None]) -> Callable[[AWSRequest, int], None]:
    fired: list[bool] = []

    def hook(request: AWSRequest, _: int) -> None:
        if request.method == "PUT" and request.url.endswith("/manifest.json") and not fired:
            fired.append(True)
            publish_other()  # another writer wins the race between our check and our PUT

    return hook


def test_p23_concurrent_publish_of_same_version_is_a_no_op(
    s3: Any,
    aws_config: Any,
    no_dotenv: Any,
    bucket: str,
    tmp_path: Path,
    bundle_factory: Callable[..., Path],
    recorder: Any,
) -> None:
    bundle = bundle_factory(tmp_path / "artifacts")
    other = make_s3_client(aws_config, no_dotenv)
    recorder.inject = _race_on_manifest_put(
        lambda: upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=other)
    )
    mine = upload_bundle(bundle, bucket=bucket, prefix=PREFIX, client=s3)

    assert not mine.is_new
    manifest_puts = [s for s in recorder.sends if s[0] == "PUT" and s[1].endswith("manifest.json")]
    assert len(manifest_puts) == 1  # ours, answered 412 by the server
    local = download_bundle(f"s3://{bucket}/{PREFIX}", tmp_path / "cache", client=s3)
    assert _listed(local) == _listed(bundle)


def test_p23_concurrent_publish_of_other_contents_is_refused(
    s3: Any,
    aws_config: Any,
    no_dotenv: Any,
    bucket: str,
    tmp_path: Path,
    bundle_factory: Callable[..., Path],
    recorder: Any,
) -> None:
    mine_dir = bundle_factory(tmp_path / "one", seed=0)
    theirs_dir = bundle_factory(tmp_path / "two", seed=1)
    other = make_s3_client(aws_config, no_dotenv)
    recorder.inject = _race_on_manifest_put(
        lambda: upload_bundle(theirs_dir, bucket=bucket, prefix=PREFIX, client=other)
    )
    with pytest.raises(ArtifactError, match="different contents"):
        upload_bundle(mine_dir, bucket=bucket, prefix=PREFIX, client=s3)
