"""Bounded locust load run against ``retail-forecast serve`` on 127.0.0.1 (issue 5 targets).

Not a test. Starts the real service on a free loopback port with a fresh temporary working
directory (history store, monitoring DB and logs in it), waits for ``GET /ready`` == 200, then:

1. runs locust headless for a fixed ``--seconds`` with ``--users`` users (``bench/locustfile.py``):
   each request is one random real (store_nbr, family) series x 16 days of test.csv with its
   real onpromotion; locust stops by itself (``-t``), with a subprocess timeout as a backstop;
2. samples the service's VmRSS (``/proc/<pid>/status``) every second for the whole run;
3. times the all-series request (all 28,512 test.csv rows in one POST) ``--all-series-reps``
   times, sequentially, after the load run;
4. sends SIGTERM and records the exit code.

Locust runs on the same machine (same cores) as the service: its CPU time is reported.
Users are closed-loop (each sends its next request when the answer arrives) unless
``--user-rps`` paces them. Default 10 users: on the 2-core VM 4 users already saturate the
single-worker service (4 inference threads); more users only add queueing to the latency.
RSS "flat" = mean VmRSS of the last minute of the load over that of the first minute.

Quantiles (issue 17's serving cost): ``--quantiles 0.1,0.5,0.9`` adds ``"quantiles"`` to every
single-series body; ``--compare-quantiles`` runs the load twice back to back against the same
service, point-only first, then with the quantiles (``--quantiles``, default 0.1,0.5,0.9),
``--seconds`` each, and reports p50/p95/p99 and req/s side by side with the p99 ratio.

    .venv/bin/python bench/serve.py --artifacts A --data-dir D --compare-quantiles \
        --seconds 60 --users 4 --out bench/serve_quantiles.json
Prints a markdown table and writes the numbers as JSON (``--out``); exits non-zero on any
failed request.

    .venv/bin/python bench/serve.py --artifacts artifacts \
        --data-dir ../shared/data/favorita-store-sales --seconds 180 --out bench/serve.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd

from retail_forecast.config import ApiConfig

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
LOOPBACK = "127.0.0.1"
PREDICT = "/api/v1/predict"
JSON_HEADERS = {"Content-Type": "application/json"}
READY_TIMEOUT_S = 600.0
READY_STREAK = 20


@dataclass
class RssSampler:
    """Samples a process's VmRSS (MiB) once a second in a thread until stopped."""

    pid: int
    interval_s: float = 1.0
    samples: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, MiB)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = rss_mib(self.pid)
            if rss is not None:
                self.samples.append((time.monotonic(), rss))
            self._stop.wait(self.interval_s)

    def between(self, start: float, end: float) -> list[float]:
        return [rss for t, rss in self.samples if start <= t <= end]


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn workers), from /proc/<pid>/task/*/children."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def rss_mib(pid: int) -> float | None:
    """VmRSS of ``pid`` and its workers in MiB (summed); None once the process is gone."""
    total, seen = 0.0, False
    for member in process_tree(pid):
        try:
            text = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
                seen = True
    return total if seen else None


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live workers from /proc/<pid>/stat."""
    total = 0.0
    for member in process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def loopback_url(host: str, port: int) -> str:
    """The service URL; refuses anything but 127.0.0.1 (this is a load generator)."""
    url = f"http://{host}:{port}"
    if urlsplit(url).hostname != LOOPBACK:
        raise SystemExit(f"bench/serve.py only targets {LOOPBACK}, got {host!r}")
    return url


DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


def request_bodies(data_dir: Path, quantiles: tuple[float, ...] = ()) -> tuple[list[str], str, int]:
    """One JSON body per real (store_nbr, family) series (16 rows), and all rows in one body.

    ``quantiles``: levels added to each single-series body (the all-series body stays point-only).
    """
    test = pd.read_csv(
        data_dir / "test.csv", usecols=["date", "store_nbr", "family", "onpromotion"]
    )
    test = test.sort_values(["store_nbr", "family", "date"], kind="stable")
    records: list[dict[str, Any]] = []
    per_series: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for d, s, f, p in test.itertuples(index=False, name=None):
        rec = {"date": str(d), "store_nbr": int(s), "family": str(f), "onpromotion": int(p)}
        records.append(rec)
        per_series.setdefault((int(s), str(f)), []).append(rec)
    extra = {"quantiles": list(quantiles)} if quantiles else {}
    bodies = [
        json.dumps({"rows": rows, **extra}, separators=(",", ":")) for rows in per_series.values()
    ]
    return bodies, json.dumps({"rows": records}, separators=(",", ":")), len(records)


def service_env(
    work: Path, all_body_bytes: int, all_rows: int
) -> tuple[dict[str, str], dict[str, int]]:
    """Env for the service: everything it writes goes under ``work``; limits raised if needed."""
    env = {
        **os.environ,
        "RF_LOG_DIR": str(work / "logs"),
        "RF_API__HISTORY_DIR": str(work / "history"),
        "RF_MONITORING__DB_PATH": str(work / "monitoring.sqlite"),
    }
    env.pop("RF_API__API_KEYS", None)
    defaults = ApiConfig()
    raised: dict[str, int] = {}
    if all_body_bytes > defaults.max_body_bytes:
        raised["RF_API__MAX_BODY_BYTES"] = all_body_bytes + 1024
    if all_rows > defaults.max_rows:
        raised["RF_API__MAX_ROWS"] = all_rows
    env.update({k: str(v) for k, v in raised.items()})
    return env, raised


def serve_command(artifacts: Path, port: int, workers: int) -> list[str]:
    script = Path(sys.executable).with_name("retail-forecast")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "retail_forecast.cli"]
    return [
        *head,
        "serve",
        "--artifacts",
        str(artifacts.resolve()),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        *(["--workers", str(workers)] if workers > 1 else []),
    ]


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> float:
    """Seconds until READY_STREAK new connections in a row get /ready 200 (every worker)."""
    t0 = time.monotonic()
    streak = 0
    while streak < READY_STREAK:
        if proc.poll() is not None or time.monotonic() - t0 > READY_TIMEOUT_S:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"service not ready (exit {proc.returncode}); log tail:\n{tail}")
        try:  # a new connection each time: with several workers, any of them may answer
            streak = streak + 1 if httpx.get(url + "/ready", timeout=2).status_code == 200 else 0
        except httpx.TransportError:
            streak = 0
        time.sleep(0.1 if streak == 0 else 0.01)
    return time.monotonic() - t0


def check_one(url: str, body: str) -> None:
    r = httpx.post(url + PREDICT, content=body, headers=JSON_HEADERS, timeout=60)
    request = json.loads(body)
    assert r.status_code == 200, r.text[:300]
    predictions = r.json()["predictions"]
    assert len(predictions) == len(request["rows"]), "predictions != rows"
    levels = [repr(float(q)) for q in request.get("quantiles", [])]
    assert all(list(p.get("quantiles", {})) == levels for p in predictions), "quantiles missing"


def percentile_ms(response_times: dict[float, int], count: int, percent: float) -> float:
    """Locust's own percentile rule over its (rounded) response-time buckets."""
    target = int(count * percent)
    done = 0
    for rt in sorted(response_times, reverse=True):
        done += response_times[rt]
        if count - done <= target:
            return rt
    return 0.0


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests, failures, req/s and percentiles from locust's final ``--json-file`` stats."""
    if len(entries) != 1:
        raise SystemExit(f"expected one locust stats entry, got {len(entries)}")
    e = entries[0]
    n = int(e["num_requests"])
    times = {float(k): int(v) for k, v in e["response_times"].items()}
    span = (e["last_request_timestamp"] or e["start_time"]) - e["start_time"]
    return {
        "requests": n,
        "failures": int(e["num_failures"]),
        "req_per_s": n / span if span > 0 else float("nan"),
        "mean_ms": e["total_response_time"] / n if n else float("nan"),
        **{f"p{q}_ms": percentile_ms(times, n, q / 100) for q in (50, 95, 99)},
        "max_ms": float(e["max_response_time"]),
        "min_ms": e["min_response_time"],
        "span_s": span,
    }


def run_locust(
    args: argparse.Namespace, url: str, work: Path, bodies: Path, tag: str = "locust"
) -> dict[str, Any]:
    """Run locust headless for ``--seconds`` over the bodies in ``bodies``; summarise its stats.

    ``tag`` names its files in ``work`` (one run per tag).
    """
    command = [
        str(Path(sys.executable).with_name("locust")),
        "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.seconds}s",
        "--host", url, "--loglevel", "WARNING",
        "--json-file", str(work / f"{tag}_final"),  # the final stats (the CSV lags by ~1 s)
        "--csv", str(work / tag),  # per-second history, kept with --keep
    ]  # fmt: skip
    env = {**os.environ, "RF_BENCH_BODIES": str(bodies)}
    if args.user_rps:
        env["RF_BENCH_USER_RPS"] = str(args.user_rps)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with (work / f"{tag}.log").open("wb") as log:
        proc = subprocess.run(
            command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
            timeout=args.seconds + 120, check=False,
        )  # fmt: skip
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    final = work / f"{tag}_final.json"
    if not final.exists():
        tail = (work / f"{tag}.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"locust exited {proc.returncode} without stats; log tail:\n{tail}")
    return {
        "command": " ".join(command),
        "exit_code": proc.returncode,
        "wall_s": wall,
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        **summarize(json.loads(final.read_text())),
    }


def quantile_levels(args: argparse.Namespace) -> tuple[float, ...]:
    """The levels the quantile bodies carry: ``--quantiles``, or 0.1,0.5,0.9 with a comparison."""
    if args.quantiles:
        return tuple(float(q) for q in args.quantiles.split(","))
    return DEFAULT_QUANTILES if args.compare_quantiles else ()


def run_loads(args: argparse.Namespace, url: str, work: Path) -> dict[str, Any]:
    """The load run(s): ``locust`` (point-only, or with quantiles when only those are asked)
    and, with ``--compare-quantiles``, ``locust_quantiles`` right after it on the same service,
    then ``locust_point_after``: point-only again, so a drift over the run (the prediction log
    grows, the machine's other load changes) shows instead of being charged to the quantiles.
    """
    point, with_q = work / "bodies.json", work / "bodies_quantiles.json"
    if not args.compare_quantiles:
        return {"locust": run_locust(args, url, work, with_q if args.quantiles else point)}
    return {
        "locust": run_locust(args, url, work, point),
        "locust_quantiles": run_locust(args, url, work, with_q, tag="locust_quantiles"),
        "locust_point_after": run_locust(args, url, work, point, tag="locust_point_after"),
    }


def side_by_side(result: dict[str, Any]) -> str:
    """Point-only and quantile load runs as a markdown table (``--compare-quantiles``)."""
    runs = [("point only", result["locust"]), ("with quantiles", result["locust_quantiles"])]
    if "locust_point_after" in result:
        runs.append(("point only, again", result["locust_point_after"]))
    levels = ",".join(str(q) for q in quantile_levels_of(result))
    lines = [
        "| single series x 16 days | req/s | p50 | p95 | p99 | max | requests / failures |"
        "\n|---|---|---|---|---|---|---|",
    ]
    for name, loc in runs:
        label = f"{name} ({levels})" if name == "with quantiles" else name
        ms = " | ".join(f"{loc[k]:.0f} ms" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
        lines.append(
            f"| {label} | {loc['req_per_s']:.1f} | {ms} | {loc['requests']} / {loc['failures']} |"
        )
    quant = runs[1][1]["p99_ms"]
    points = [loc["p99_ms"] for name, loc in runs if name != "with quantiles"]
    point = sum(points) / len(points)
    ratio = quant / point if point else float("nan")
    lines.append(f"\np99 with quantiles / point-only (mean of the point runs): {ratio:.3f}")
    return "\n".join(lines)


def quantile_levels_of(result: dict[str, Any]) -> list[float]:
    args = result["args"]
    return (
        [float(q) for q in args["quantiles"].split(",")]
        if args["quantiles"]
        else [*DEFAULT_QUANTILES]
    )


def time_all_series(url: str, body: str, rows: int, reps: int) -> list[float]:
    times = []
    with httpx.Client(base_url=url, timeout=120) as http:
        for _ in range(reps):
            t0 = time.perf_counter()
            r = http.post(PREDICT, content=body, headers=JSON_HEADERS)
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text[:300]
            assert len(r.json()["predictions"]) == rows, "predictions != rows"
    return times


def rss_windows(sampler: RssSampler, start: float, end: float) -> dict[str, Any]:
    """RSS over the first and last minute of the load run (a third of it if shorter)."""
    window = min(60.0, (end - start) / 3)
    first = sampler.between(start, start + window)
    last = sampler.between(end - window, end)
    if not first or not last:
        return {"window_s": window, "samples": 0}
    return {
        "window_s": window,
        "samples": len(sampler.between(start, end)),
        "first_mean_mib": statistics.fmean(first),
        "first_max_mib": max(first),
        "last_mean_mib": statistics.fmean(last),
        "last_max_mib": max(last),
        "last_over_first": statistics.fmean(last) / statistics.fmean(first),
        "load_max_mib": max(sampler.between(start, end)),
    }


def measure(args: argparse.Namespace, url: str, work: Path) -> dict[str, Any]:
    """Start the service, run the load and the all-series requests, SIGTERM it."""
    levels = quantile_levels(args)
    bodies, all_body, all_rows = request_bodies(args.data_dir)
    q_bodies = request_bodies(args.data_dir, levels)[0] if levels else []
    (work / "bodies.json").write_text(json.dumps(bodies))
    (work / "bodies_quantiles.json").write_text(json.dumps(q_bodies))
    env, raised = service_env(work, len(all_body.encode()), all_rows)
    log = work / "serve.log"
    result: dict[str, Any] = {
        "series": len(bodies),
        "all_series_rows": all_rows,
        "all_series_body_bytes": len(all_body.encode()),
        "limits_raised": raised,
    }
    command = serve_command(args.artifacts, args.port, args.workers)
    result["serve_command"] = " ".join(command)
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    sampler = RssSampler(proc.pid)
    sampler.start()
    try:
        result["ready_s"] = wait_ready(url, proc, log)
        result["rss_ready_mib"] = rss_mib(proc.pid)
        check_one(url, bodies[0])
        if q_bodies:
            check_one(url, q_bodies[0])
        cpu0, load_t0 = cpu_seconds(proc.pid), time.monotonic()
        result.update(run_loads(args, url, work))
        load_t1 = time.monotonic()
        result["service_cpu_s_during_load"] = cpu_seconds(proc.pid) - cpu0
        result["rss"] = rss_windows(sampler, load_t0, load_t1)
        result["all_series_s"] = time_all_series(url, all_body, all_rows, args.all_series_reps)
        result["rss_peak_mib"] = max(rss for _, rss in sampler.samples)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            result["exit_code"] = proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            result["exit_code"] = f"killed after 90 s (was {proc.wait()})"
        sampler.stop()
    return result


def report(result: dict[str, Any]) -> str:
    """The results as a two-column markdown table."""
    loc, rss, alls = result["locust"], result["rss"], result["all_series_s"]
    m, a = result["machine"], result["args"]
    window = f"{rss['window_s']:.0f} s"
    latency = [f"{loc[k]:.0f} ms" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
    rows = [
        (
            "machine",
            f"{m['nproc']} CPUs, load average before / after {m['loadavg_before'][0]:.2f} / "
            f"{m['loadavg_after'][0]:.2f}; locust runs on the same CPUs",
        ),
        ("`/ready` 200 after start", f"{result['ready_s']:.1f} s"),
        (
            "load",
            f"{a['users']} users, spawn {a['spawn_rate']}/s, {a['seconds']} s, "
            f"pacing {a['user_rps'] or 'none'} req/s a user",
        ),
        (
            "single-series x 16 days: requests / failures",
            f"{loc['requests']} / {loc['failures']}",
        ),
        ("req/s", f"{loc['req_per_s']:.1f}"),
        ("latency p50 / p95 / p99 / max", " / ".join(latency)),
        (
            "CPU s during the load: service / locust",
            f"{result['service_cpu_s_during_load']:.1f} / {loc['cpu_s']:.1f}",
        ),
        ("service RSS at /ready", f"{result['rss_ready_mib']:.0f} MiB"),
        (
            f"service RSS, first / last {window} of the load: mean (max)",
            f"{rss['first_mean_mib']:.0f} ({rss['first_max_mib']:.0f}) / "
            f"{rss['last_mean_mib']:.0f} ({rss['last_max_mib']:.0f}) MiB, "
            f"last/first {rss['last_over_first']:.3f}",
        ),
        ("service RSS peak (whole run, all-series included)", f"{result['rss_peak_mib']:.0f} MiB"),
        (
            f"all series: {result['all_series_rows']:,} rows, "
            f"{result['all_series_body_bytes'] / 1e6:.1f} MB body, x {len(alls)}",
            f"{', '.join(f'{t:.2f}' for t in alls)} s; median {statistics.median(alls):.2f} s",
        ),
        ("SIGTERM -> exit code", str(result["exit_code"])),
    ]
    return "\n".join(["| what | result |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--artifacts", type=Path, default=ROOT / "artifacts", help="root with `current`"
    )
    data = ROOT.parent / "shared" / "data" / "favorita-store-sales"
    parser.add_argument("--data-dir", type=Path, default=data, help="test.csv is read here")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="service worker processes")
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument(
        "--user-rps", type=float, default=None, help="pace each user (default: none)"
    )
    parser.add_argument("--all-series-reps", type=int, default=5)
    parser.add_argument("--host", default=LOOPBACK, help="only 127.0.0.1 is accepted")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument(
        "--quantiles",
        default=None,
        help="levels added to each single-series body, e.g. 0.1,0.5,0.9 (default: none)",
    )
    parser.add_argument(
        "--compare-quantiles",
        action="store_true",
        help="run point-only, then with quantiles (default 0.1,0.5,0.9), each --seconds long",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work dir")
    return parser.parse_args(argv)


def python_name() -> str:
    relative = os.path.relpath(sys.executable, ROOT)
    return sys.executable if relative.startswith("..") else relative


def main() -> None:
    args = parse_args()
    args.port = args.port or free_port()
    url = loopback_url(args.host, args.port)
    work = Path(tempfile.mkdtemp(prefix="rf-bench-serve-"))
    machine: dict[str, Any] = {"nproc": os.cpu_count(), "loadavg_before": os.getloadavg()}
    started = dt.datetime.now(dt.UTC)
    try:
        result = measure(args, url, work)
    except BaseException:
        print(f"failed; work dir kept (service log, locust log): {work}", file=sys.stderr)
        raise
    machine["loadavg_after"] = os.getloadavg()
    result = {
        "command": " ".join([python_name(), *sys.argv]),
        "started_utc": started.isoformat(timespec="seconds"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine,
        **result,
    }
    print(report(result))
    if "locust_quantiles" in result:
        print()
        print(side_by_side(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"wrote {args.out}")
    if args.keep:
        print(f"work dir (service log, locust CSV and log): {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    for key in ("locust", "locust_quantiles", "locust_point_after"):
        run = result.get(key)
        if run is not None and (run["failures"] or run["exit_code"] != 0):
            raise SystemExit(
                f"FAILED ({key}): {run['failures']} failed requests, locust exit {run['exit_code']}"
            )


if __name__ == "__main__":
    main()
