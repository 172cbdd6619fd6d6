"""`aristobot bench statistics`: the ledger and the Statistics page over a big history.

The bench trader (bench/statistics_seed.py: 200,000 fills over 2 years, 20 bots, 5 connections, seeded
once and reused) is rebuilt whole three times, as the page's cache (core/ledger/cache.py) builds it on a
cold start; the best is reported: `ledger_rebuild_s` (wall; `ledger_rebuilds_s` all three) and
`ledger_rebuild_cpu_s` (this process's CPU; the database's own work is in the wall time only), split in
loading (`ledger_load_s`) and FIFO matching of every book (`ledger_match_s`: lots, closings, positions,
realised P&L; a book's round trips are grouped from its closings when a view first reads that book, and kept).

Then the Statistics page with filters applied (one connection, and a start date 90 days before the last
fill; each view names another connection) through the app's Flask test client: server time, the whole
request (login session, filters, ledger, report, template), no network. `page_first_ms` is the first
view on a cold cache (the rebuild included), `page_p50_ms` / `page_p99_ms` the views after it,
`page_cpu_ms_mean` their mean CPU, `page_after_new_fill_ms` the view right after one more fill arrives
(the kept ledger extended by it, its book matched again; the fill is deleted afterwards). The
connections point at the configured simulator: an open position is marked at its price, or "no price"
at once when it does not run.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from datetime import timedelta

from bench.statistics_seed import deactivate, one_more_fill, prepare, remove_fill, vacuum
from core import accounts
from core.infra.db import new_session, session_scope
from core.infra.security import register_secret
from core.ledger.cache import LedgerView, forget, rebuild
from core.ledger.fifo import round_trips
from core.models import User

FILLS = 200_000
CONNECTIONS = 5
BOTS = 20
VIEWS = 60
REBUILDS = 3  # the best is reported: the machine's other work only ever adds
TARGET_PAGE_P99_MS = 500.0
TARGET_REBUILD_S = 5.0
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class StatisticsBenchError(RuntimeError):
    pass


@dataclass
class StatisticsBenchResult:
    fills: int
    round_trips: int
    books: int
    seeded_now: bool
    seed_s: float
    ledger_load_s: float
    ledger_match_s: float
    ledger_rebuild_s: float
    ledger_rebuild_cpu_s: float
    ledger_rebuilds_s: list[float]  # each of the REBUILDS runs, wall
    page_filter: str
    page_timed_through: str
    page_first_ms: float
    page_views: int
    page_p50_ms: float
    page_p99_ms: float
    page_cpu_ms_mean: float
    page_after_new_fill_ms: float  # the next view after a fill arrives: the kept ledger extended by it
    meets_targets: bool


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _client(user_id: int):
    from webapp import create_app  # the web app only for the page half of the bench

    password = accounts.generate_password()
    register_secret(password)
    with session_scope() as session:
        user = session.get(User, user_id)
        user.set_password(password)
        username = user.username
    client = create_app().test_client()
    match = _TOKEN.search(client.get("/login").get_data(as_text=True))
    if match is None:
        raise StatisticsBenchError("no CSRF token on /login")
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": match.group(1)})
    if response.status_code != 302:
        raise StatisticsBenchError(f"login answered {response.status_code}")
    return client


def _rebuild(user_id: int) -> tuple[LedgerView, dict[str, float], float, float]:
    """The whole ledger built once: the view, its load/match seconds, wall and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    with new_session() as session:
        view, timings = rebuild(session, user_id, None)
    return view, timings, time.perf_counter() - wall, time.process_time() - cpu


def _view(client, query: dict[str, str]) -> tuple[float, float]:
    """One page view: (wall ms, CPU ms)."""
    wall, cpu = time.perf_counter(), time.process_time()
    response = client.get("/statistics/", query_string=query)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if response.status_code != 200 or 'id="stat-by-source"' not in response.get_data(as_text=True):
        raise StatisticsBenchError(f"the statistics page answered {response.status_code} without its tables")
    return wall * 1000, cpu * 1000


def run(
    sim_url: str, fills: int = FILLS, connections: int = CONNECTIONS, bots: int = BOTS, views: int = VIEWS
) -> StatisticsBenchResult:
    started = time.perf_counter()
    with session_scope() as session:
        seeded = prepare(session, fills, connections, bots, sim_url)
    if seeded.inserted:
        vacuum()
    seed_s = time.perf_counter() - started
    try:
        forget(seeded.user_id)
        rebuilds, best = [], None
        for _ in range(REBUILDS):  # one view of 200,000 fills held at a time besides the best (~300 MB each)
            run = _rebuild(seeded.user_id)
            rebuilds.append(run[2])
            best = run if best is None or run[2] < best[2] else best
        view, timings, rebuild_s, rebuild_cpu_s = best
        start = (seeded.last - timedelta(days=90)).date().isoformat()
        queries = [{"broker": str(broker_id), "start": start} for broker_id in seeded.broker_ids]
        client = _client(seeded.user_id)
        forget(seeded.user_id)
        first_ms, _ = _view(client, queries[0])
        timed = [_view(client, queries[n % len(queries)]) for n in range(views)]
        with session_scope() as session:
            extra = one_more_fill(session, seeded)
        try:
            after_fill_ms, _ = _view(client, queries[0])
        finally:
            with session_scope() as session:
                remove_fill(session, extra)
    finally:
        with session_scope() as session:
            deactivate(session, seeded.user_id)
        forget(seeded.user_id)
    walls = [ms for ms, _ in timed]
    p99 = _percentile(walls, 0.99)
    return StatisticsBenchResult(
        fills=len(view.fills),
        round_trips=sum(len(round_trips(book)) for book in view.books.values()),
        books=len(view.books),
        seeded_now=seeded.inserted,
        seed_s=round(seed_s, 2),
        ledger_load_s=round(timings["load"], 3),
        ledger_match_s=round(timings["match"], 3),
        ledger_rebuild_s=round(rebuild_s, 3),
        ledger_rebuild_cpu_s=round(rebuild_cpu_s, 3),
        ledger_rebuilds_s=[round(seconds, 3) for seconds in rebuilds],
        page_filter=f"broker=<each of {connections} in turn>&start={start}",
        page_timed_through="Flask test client (server time, no network)",
        page_first_ms=round(first_ms, 1),
        page_views=len(walls),
        page_p50_ms=round(statistics.median(walls), 1),
        page_p99_ms=round(p99, 1),
        page_cpu_ms_mean=round(statistics.fmean(cpu for _, cpu in timed), 1),
        page_after_new_fill_ms=round(after_fill_ms, 1),
        meets_targets=p99 < TARGET_PAGE_P99_MS and rebuild_s < TARGET_REBUILD_S,
    )
