"""`aristobot bench backtest-web`: 10,000 candles end to end from the web, submit -> results page.

What is timed, per run: POST the form (validation, run recorded, task sent) -> the worker picks the task
from the `backtests` queue, loads the candles from Postgres, runs the strategy in a fresh sandbox
process, stores the results -> the browser's progress poll sees "done" -> GET the results page ->
GET the chart data (candles, markers, equity, drawdown). Real processes over real HTTP: gunicorn
(gthread, as in production) and a Celery worker, against the configured Postgres and Redis.

The HTTP client is also what tests/integration/test_backtest_journey.py drives the pages with.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import requests

from bench.data import data_dir as default_data_dir
from core.infra.config import ROOT

logger = logging.getLogger(__name__)

VENUE_PREFIX = "btweb-"  # + a random tag: one venue per bench run, the only candles it deletes
BENCH_SYMBOL = "BTCUSDT"
BENCH_TIMEFRAME = "1m"
BENCH_FILE = "BTCUSDT-1m.csv"
SMA_CROSS = ROOT / "core" / "strategies" / "examples" / "sma_cross.py"
TARGET_SECONDS = 2.0
PAGE_POLL_SECONDS = 0.2  # templates/backtests/_progress.html polls every 200 ms: the bench waits as the page does
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class WebJourneyError(RuntimeError):
    pass


@dataclass
class Timing:
    submit: float
    until_done: float
    results_page: float
    chart: float
    total: float
    polls: int


@dataclass
class BacktestWebClient:
    """A trader's browser, minus the JavaScript: a cookie session, CSRF tokens, HTMX-style polling."""

    base_url: str
    http: requests.Session = field(default_factory=requests.Session)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def token(self, path: str) -> str:
        match = _TOKEN.search(self.http.get(self.url(path), timeout=10).text)
        if match is None:
            raise WebJourneyError(f"no CSRF token on {path}")
        return match.group(1)

    def login(self, username: str, password: str) -> None:
        data = {"username": username, "password": password, "csrf_token": self.token("/login")}
        response = self.http.post(self.url("/login"), data=data, allow_redirects=False, timeout=10)
        if response.status_code != 302:
            raise WebJourneyError(f"login answered {response.status_code}")

    def submit(self, form: dict, token: str | None = None) -> requests.Response:
        data = {"csrf_token": token or self.token("/backtests/new"), "grid_metric": "total_return_pct"} | form
        return self.http.post(self.url("/backtests/new"), data=data, allow_redirects=False, timeout=30)

    def submit_run(self, form: dict, token: str | None = None) -> int:
        response = self.submit(form, token)
        match = re.search(r"/backtests/(\d+)$", response.headers.get("Location", ""))
        if response.status_code != 302 or match is None:
            raise WebJourneyError(f"the form answered {response.status_code}: {_form_error(response.text)}")
        return int(match.group(1))

    def wait_finished(self, run_id: int, poll_seconds: float = PAGE_POLL_SECONDS, timeout: float = 60.0) -> int:
        """Poll the progress fragment as the page does until it says refresh; returns the number of polls."""
        deadline = time.monotonic() + timeout
        polls = 0
        while time.monotonic() < deadline:
            polls += 1
            response = self.http.get(self.url(f"/backtests/{run_id}/progress"), timeout=10)
            response.raise_for_status()
            if response.headers.get("HX-Refresh") == "true":
                return polls
            time.sleep(poll_seconds)
        raise WebJourneyError(f"run {run_id} did not finish within {timeout:g} s")

    def page(self, path: str) -> str:
        response = self.http.get(self.url(path), timeout=30)
        response.raise_for_status()
        return response.text

    def chart(self, run_id: int) -> dict:
        response = self.http.get(self.url(f"/backtests/{run_id}/chart.json"), timeout=30)
        response.raise_for_status()
        return response.json()

    def timed_run(self, form: dict) -> Timing:
        token = self.token("/backtests/new")  # the form page was already open in the browser
        started = time.perf_counter()
        run_id = self.submit_run(form, token)
        submitted = time.perf_counter()
        polls = self.wait_finished(run_id)
        done = time.perf_counter()
        html = self.page(f"/backtests/{run_id}")
        if 'id="bt-charts"' not in html:
            raise WebJourneyError(f"run {run_id} has no results: {_form_error(html) or 'failed'}")
        shown = time.perf_counter()
        chart = self.chart(run_id)
        finished = time.perf_counter()
        if not chart["candles"] or not chart["equity"]:
            raise WebJourneyError(f"run {run_id}: empty chart data")
        return Timing(submitted - started, done - submitted, shown - done, finished - shown, finished - started, polls)


def _form_error(html: str) -> str:
    match = re.search(r'class="(?:flash error|error)"[^>]*>([^<]+)<', html)
    return match.group(1).strip() if match else ""


# --------------------------------------------------------------------------- the bench itself


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # not listening yet, or still importing the app
            time.sleep(0.1)
    raise WebJourneyError(f"{url} did not answer within {timeout:g} s")


def _read_candles(path: Path, rows: int, venue: str) -> list[dict]:
    out = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            out.append(
                {
                    "venue": venue,
                    "symbol": BENCH_SYMBOL,
                    "timeframe": BENCH_TIMEFRAME,
                    "open_time": int(row[0]),
                    **{
                        k: Decimal(v) for k, v in zip(("open", "high", "low", "close", "volume"), row[1:6], strict=True)
                    },
                }
            )
            if len(out) >= rows:
                break
    return out


def _prepare(rows: int, data_dir: Path, venue: str) -> tuple[str, str, int]:
    """A throwaway trader with the SMA cross example and `rows` real 1m candles under its own venue."""
    from sqlalchemy.dialects.postgresql import insert

    from core import accounts
    from core.infra.db import session_scope
    from core.infra.migrate import upgrade_database
    from core.models import Candle, StrategyRecord, StrategyVersion

    upgrade_database()
    candles = _read_candles(data_dir / BENCH_FILE, rows, venue)
    if len(candles) < rows:
        raise WebJourneyError(f"{BENCH_FILE} has only {len(candles)} rows")
    username, password = f"bench-bt-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    with session_scope() as session:
        for start in range(0, len(candles), 5000):
            session.execute(insert(Candle).values(candles[start : start + 5000]).on_conflict_do_nothing())
        user = accounts.create_user(session, username, password, within_limits=False)
        strategy = StrategyRecord(user_id=user.id, name="bench SMA cross")
        strategy.versions.append(
            StrategyVersion(number=1, code=SMA_CROSS.read_text(), params={}, valid=True, class_name="SmaCross")
        )
        session.add(strategy)
        session.flush()
        version_id = strategy.versions[0].id
    return username, password, version_id


def _cleanup(username: str, venue: str) -> None:
    from sqlalchemy import delete

    from core.infra.db import session_scope
    from core.models import Candle, User

    with session_scope() as session:
        session.execute(delete(User).where(User.username == username))  # cascades strategies and runs
        session.execute(delete(Candle).where(Candle.venue == venue))


def _start(args: list[str], log_path: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = log_path.open("a")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def bench_backtest_web(
    rows: int = 10_000, repeats: int = 7, data_dir: Path | None = None, log_dir: Path | None = None
) -> dict:
    data_dir = data_dir or default_data_dir()
    log_dir = log_dir or Path(os.environ.get("ARISTOBOT_VAR", ROOT / "var")) / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    venue = VENUE_PREFIX + secrets.token_hex(4)
    username, password, version_id = _prepare(rows, data_dir, venue)
    port = _free_port()
    python = sys.executable
    web = _start(
        [
            python,
            "-m",
            "gunicorn",
            "-w",
            "1",
            "--threads",
            "8",
            "-k",
            "gthread",
            "-b",
            f"127.0.0.1:{port}",
            "webapp:create_app()",
        ],
        log_dir / "backtest-web-gunicorn.log",
    )
    worker = _start(
        [
            python,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            "backtests",
            "-c",
            "1",
            "-n",
            f"bench-backtests-{secrets.token_hex(3)}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        log_dir / "backtest-web-worker.log",
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/login")
        client = BacktestWebClient(base)
        client.login(username, password)
        form = {
            "strategy_version": str(version_id),
            "dataset": f"{venue}|{BENCH_SYMBOL}|{BENCH_TIMEFRAME}",
            "start": "",
            "end": "",
            "fee": "0.001",
            "slippage_bps": "0",
            "cash": "10000",
            "params": "fast=10, slow=30",
            "grid": "",
        }
        client.timed_run(form | {"params": "fast=9"})  # warm-up: first imports in both processes
        timings = [client.timed_run(form) for _ in range(repeats)]
    finally:
        _stop(web)
        _stop(worker)
        _cleanup(username, venue)
    totals = [t.total for t in timings]
    return {
        "benchmark": "backtest-web",
        "candles": rows,
        "timeframe": BENCH_TIMEFRAME,
        "strategy": "SMA(10/30) cross (core/strategies/examples/sma_cross.py)",
        "repeats": repeats,
        "target_seconds": TARGET_SECONDS,
        "median_seconds": round(statistics.median(totals), 3),
        "max_seconds": round(max(totals), 3),
        "min_seconds": round(min(totals), 3),
        "within_target": max(totals) < TARGET_SECONDS,
        "median_breakdown_seconds": {
            name: round(statistics.median(getattr(t, name) for t in timings), 3)
            for name in ("submit", "until_done", "results_page", "chart")
        },
        "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in vars(t).items()} for t in timings],
    }
