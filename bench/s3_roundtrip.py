"""Real Favorita files through S3 (moto's server on 127.0.0.1): our upload/download vs plain boto3.

Usage: /usr/bin/time -v .venv/bin/python bench/s3_roundtrip.py [--data-path DIR] [--repeat N]

Ours: ``upload_dataset`` (SHA256 checksums, old marker deleted first, marker last) and
``download_dataset`` (marker first, sha256 of every file checked, staged then renamed). The
reference, measured in the same process against the same server, is a bare ``put_object`` /
``get_object`` loop over the same files. Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

from moto.server import ThreadedMotoServer

from retail_forecast.aws.datasets import download_dataset, raw_dataset_files, upload_dataset
from retail_forecast.aws.env import AwsEnvSettings, make_s3_client
from retail_forecast.config import AwsConfig

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "favorita-store-sales"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _timed(fn: object, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-path", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # noqa: S106 - dummy
    port = _port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        config = AwsConfig(endpoint_url=f"http://127.0.0.1:{port}")
        client = make_s3_client(config, AwsEnvSettings(_env_file=None))  # type: ignore[call-arg]
        client.create_bucket(Bucket="bench-bucket")
        files = raw_dataset_files(args.data_path)
        total = sum(p.stat().st_size for p in files.values())
        print(f"files: {len(files)}, {total / 2**20:.1f} MiB")

        def plain_up() -> None:
            for name, path in files.items():
                client.put_object(
                    Bucket="bench-bucket", Key=f"plain/{name}", Body=path.read_bytes()
                )

        def plain_down() -> None:
            for name in files:
                client.get_object(Bucket="bench-bucket", Key=f"plain/{name}")["Body"].read()

        def ours_up() -> None:
            upload_dataset(args.data_path, bucket="bench-bucket", prefix="ours", client=client)

        with tempfile.TemporaryDirectory() as tmp:
            caches = iter(range(1_000))

            def ours_down() -> None:  # a fresh cache each time: a full download
                cache = Path(tmp) / str(next(caches))
                download_dataset("s3://bench-bucket/ours", cache, client=client)

            def ours_cached() -> None:
                download_dataset("s3://bench-bucket/ours", Path(tmp) / "0", client=client)

            rows = {
                "plain put_object loop": _timed(plain_up, args.repeat),
                "upload_dataset": _timed(ours_up, args.repeat),
                "plain get_object loop": _timed(plain_down, args.repeat),
                "download_dataset (fresh cache)": _timed(ours_down, args.repeat),
                "download_dataset (cached, marker + local sha256)": _timed(
                    ours_cached, args.repeat
                ),
            }
        for label, times in rows.items():
            med = statistics.median(times)
            print(
                f"{label}: median {med:.2f} s ({total / 2**20 / med:.0f} MiB/s), "
                f"runs {', '.join(f'{t:.2f}' for t in times)}"
            )
        up = statistics.median(rows["upload_dataset"]) / statistics.median(
            rows["plain put_object loop"]
        )
        down = statistics.median(rows["download_dataset (fresh cache)"]) / statistics.median(
            rows["plain get_object loop"]
        )
        print(f"ratio ours/plain: upload {up:.2f}x, download {down:.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
