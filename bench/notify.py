"""`aristobot bench notify`: from notify() to every open page of the user receiving it over SSE.

Against the running web app: the bench's own user (`bench-notify`, created on the first run, its password
new on each run) opens `pages` notification streams, then `events` notifications are made one after the
other; each latency is notify()'s call to one page's SSE event showing the new unread count.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import requests
from sqlalchemy import delete

from bench.accounts import bench_user
from core import accounts
from core.infra.db import session_scope
from core.infra.security import register_secret
from core.models import Notification
from core.notifications.center import notify
from core.percentiles import percentile

USERNAME = "bench-notify"
_UNREAD = re.compile(r'data-unread="(\d+)"')


@dataclass(frozen=True)
class NotifyBenchResult:
    pages: int
    events: int
    received: int
    page_p50_ms: float
    page_p99_ms: float
    page_max_ms: float


class _Page(threading.Thread):
    """One open page: reads its SSE stream, noting when each unread count first arrives."""

    def __init__(self, http: requests.Session, url: str) -> None:
        super().__init__(daemon=True)
        self.http, self.url = http, url
        self.seen: dict[int, float] = {}
        self.ready = threading.Event()
        self.response: requests.Response | None = None

    def run(self) -> None:
        with self.http.get(self.url, stream=True, timeout=30) as response:
            self.response = response
            for line in response.iter_lines(decode_unicode=True):
                match = _UNREAD.search(line or "")
                if match:
                    self.seen.setdefault(int(match.group(1)), time.perf_counter())
                    self.ready.set()


def _login(web_url: str) -> tuple[requests.Session, int]:
    password = accounts.generate_password()
    register_secret(password)
    with session_scope() as session:
        user = bench_user(session, USERNAME)
        user.set_password(password)
        session.execute(delete(Notification).where(Notification.user_id == user.id))
        user_id = user.id
    http = requests.Session()
    page = http.get(f"{web_url}/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    http.post(
        f"{web_url}/login", data={"username": USERNAME, "password": password, "csrf_token": token}, timeout=10
    ).raise_for_status()
    return http, user_id


def run(web_url: str, pages: int = 3, events: int = 200, timeout_s: float = 5.0) -> NotifyBenchResult:
    web_url = web_url.rstrip("/")
    http, user_id = _login(web_url)
    readers = [_Page(http, f"{web_url}/notifications/stream") for _ in range(pages)]
    for reader in readers:
        reader.start()
    for reader in readers:
        if not reader.ready.wait(10):
            raise RuntimeError("a notification stream did not answer within 10 s (is the web app running?)")
    latencies: list[float] = []
    for count in range(1, events + 1):
        started = time.perf_counter()
        notify(user_id, "info", "test", f"bench {count}")
        deadline = started + timeout_s
        while any(count not in r.seen for r in readers) and time.perf_counter() < deadline:
            time.sleep(0.0005)
        latencies += [(r.seen[count] - started) * 1000 for r in readers if count in r.seen]
    for reader in readers:
        if reader.response is not None:
            reader.response.close()
    with session_scope() as session:
        session.execute(delete(Notification).where(Notification.user_id == user_id))

    def ms(q: float) -> float:
        value = percentile(latencies, q)
        return round(value, 2) if value is not None else float("nan")

    return NotifyBenchResult(
        pages=pages,
        events=events,
        received=len(latencies),
        page_p50_ms=ms(0.5),
        page_p99_ms=ms(0.99),
        page_max_ms=ms(1.0),
    )
