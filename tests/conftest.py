"""Session-wide real infrastructure: one embedded PostgreSQL and one Redis server for the whole run.

Environment is set before anything imports `core.infra.config`, so every module sees the test servers.
Every log line of the suite (this process and the processes it starts) lands in one folder, which
the secrets audit (tests/secrets_audit.py, run when the session ends) greps for the secrets the suite used.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = Path(tempfile.mkdtemp(prefix="aristobot-test-"))
LOG_DIR = RUN_DIR / "logs"
LOG_DIR.mkdir()


from tests.support import free_port  # noqa: E402

PG_PORT, REDIS_PORT = free_port(), free_port()
PG_DATA_DIR, REDIS_DATA_DIR = RUN_DIR / "pg", RUN_DIR / "redis"
TEST_SECRET_KEY = "test-secret-" + secrets.token_urlsafe(24)
TEST_FERNET_KEY = Fernet.generate_key().decode()
# The simulators the tests start listen on loopback ports of their own, so the tests' config lets users'
# URLs reach 127.0.0.0/8 (the shipped config refuses it: core/outbound.py); other private ranges stay refused.
TEST_CONFIG = RUN_DIR / "config.yaml"
TEST_CONFIG.write_text(
    yaml.safe_dump(
        {
            **yaml.safe_load((ROOT / "config.yaml").read_text()),
            "security": {"allow_private_urls": False, "allowed_networks": ["127.0.0.0/8"]},
            # one test database holds every test's users and bots
            "limits": {"max_active_users": 100_000, "max_running_bots_per_user": 1000},
            # outbound notifications: retried quickly, so a failure is seen in time
            "notifications": {"retry_backoff_s": 0.1},
        }
    )
)
# The servers are set up as `make run` sets up the embedded ones: passwords everywhere, and the app
# connects as the owner of its database, not as the superuser (core/infra/embedded_pg.py).
PG_APP_ROLE, PG_DATABASE = "aristobot_test_app", "aristobot_test"
PG_APP_PASSWORD = "pg-" + secrets.token_urlsafe(24)
REDIS_PASSWORD = "redis-" + secrets.token_urlsafe(24)
os.environ.update(
    {
        "ARISTOBOT_HOME": str(ROOT),
        "ARISTOBOT_CONFIG": str(TEST_CONFIG),
        "ARISTOBOT_VAR": str(RUN_DIR / "var"),
        "ARISTOBOT_ENV_FILE": str(RUN_DIR / "no.env"),
        "ARISTOBOT_TEST_LOG_DIR": str(LOG_DIR),
        "SECRET_KEY": TEST_SECRET_KEY,
        "FERNET_KEYS": TEST_FERNET_KEY,
        "DATABASE_URL": f"postgresql://{PG_APP_ROLE}:{PG_APP_PASSWORD}@127.0.0.1:{PG_PORT}/{PG_DATABASE}",
        "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{REDIS_PORT}/0",
    }
)
# Secrets the suite uses; tests add theirs with `remember_secret`. None may appear in any log.
USED_SECRETS: set[str] = {TEST_SECRET_KEY, TEST_FERNET_KEY, PG_APP_PASSWORD, REDIS_PASSWORD}
(LOG_DIR / "secrets.txt").touch()


from tests.support import csrf_token_from, remember_secret, stop_process  # noqa: E402,F401  (re-exported)

for value in USED_SECRETS:
    remember_secret(value)

# The secrets audit (run when the session ends) and the shared `sim` / `sims` simulator fixtures. One
# assignment: a second `pytest_plugins = ...` below would silently replace this one.
pytest_plugins = ("tests.secrets_audit", "tests.sim_support")

from core.infra.logs import setup_logging  # noqa: E402  (after the environment is set)

setup_logging("pytest", "INFO", stream=open(LOG_DIR / "pytest.log", "a"))  # noqa: SIM115

# Argon2id at the library's recommended cost (64 MiB, 3 passes, 4 lanes) is a large share of the suite's CPU:
# every test user and every login pays it. This process hashes at argon2id's lowest cost instead; a hash
# carries its own cost, so every process (workers, `make run`) still verifies each one for real.
from argon2 import PasswordHasher  # noqa: E402

import core.models.users  # noqa: E402

core.models.users._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


@pytest.fixture(scope="session")
def redis_server():
    from core.infra.embedded_services import redis_command, start_server

    log = open(LOG_DIR / "redis.log", "a")  # noqa: SIM115
    process = start_server(redis_command(REDIS_PORT, REDIS_DATA_DIR, REDIS_PASSWORD), stdout=log, stderr=log)
    _wait_port(REDIS_PORT)
    yield os.environ["REDIS_URL"]
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def postgres_server():
    from core.infra.embedded_pg import (
        init_postgres,
        postgres_command,
        provision_app_database,
        superuser_password_file,
    )
    from core.infra.embedded_services import start_server
    from core.infra.migrate import upgrade_database

    data_dir = PG_DATA_DIR
    user = init_postgres(data_dir)
    remember_secret(superuser_password_file(data_dir).read_text().strip())
    log = open(LOG_DIR / "postgres.log", "a")  # noqa: SIM115
    process = start_server(postgres_command(data_dir, PG_PORT), user=user, stdout=log, stderr=log)
    _wait_port(PG_PORT)
    provision_app_database(data_dir, PG_PORT, PG_APP_PASSWORD, database=PG_DATABASE, role=PG_APP_ROLE)
    upgrade_database()
    yield os.environ["DATABASE_URL"]
    process.send_signal(signal.SIGINT)  # "fast shutdown": does not wait for pooled clients
    process.wait(30)


@pytest.fixture()
def server_home():
    """A directory for a test's own embedded servers. Not pytest's tmp_path: when the suite runs as root,
    the `pgserver` system user must cross its parents, and any pytest session starting on this machine
    resets /tmp/pytest-of-<user> to 0700."""
    path = Path(tempfile.mkdtemp(prefix="aristobot-home-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def infra(postgres_server, redis_server):
    """Both real servers, migrated. Most integration tests want this."""
    return {"database_url": postgres_server, "redis_url": redis_server}


@pytest.fixture()
def redis_client(redis_server):
    from core.infra.bus import get_redis

    client = get_redis()
    client.flushdb()
    return client


@pytest.fixture()
def db_session(infra):
    from core.infra.db import new_session

    with new_session() as session:
        yield session


@pytest.fixture()
def make_user(infra):
    """Create a user with a fresh random name; returns (user, password)."""
    from core import accounts
    from core.infra.db import session_scope

    def factory(is_admin: bool = False, username: str | None = None):
        password = remember_secret("pw-" + secrets.token_urlsafe(12))
        name = username or f"u{secrets.token_hex(4)}"
        with session_scope() as session:
            user = accounts.create_user(session, name, password, is_admin=is_admin)
        return user, password

    return factory


@pytest.fixture()
def app(infra):
    from webapp import create_app

    return create_app(TESTING=False, RATELIMIT_ENABLED=True)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def login(client):
    def do_login(username: str, password: str, test_client=None):
        c = test_client or client
        token = csrf_token_from(c.get("/login").get_data(as_text=True))
        return c.post("/login", data={"username": username, "password": password, "csrf_token": token})

    return do_login


@pytest.fixture()
def logged_in(client, make_user, login):
    user, password = make_user()
    response = login(user.username, password)
    assert response.status_code == 302
    return user


def process_env(**extra) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def start_celery_worker(queues: str, log_name: str = "celery-worker.log") -> subprocess.Popen:
    """A real Celery worker process (2 processes) on `queues`, as the Procfile starts one, once it answers."""
    log = open(LOG_DIR / log_name, "a")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            queues,
            "-c",
            "2",
            "-n",
            f"test-{secrets.token_hex(3)}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=process_env(),
        stdout=log,
        stderr=log,
    )
    from core import tasks
    from workers.celery_app import app as celery_app

    result = tasks.send_ping("ready", app=celery_app)
    assert result.get(timeout=60) == "ready"
    return process


@pytest.fixture(scope="session")
def celery_worker_process(infra):
    """A real Celery worker process on every queue, as the Procfile starts it."""
    process = start_celery_worker("orders,bots,backtests,maintenance")
    yield process
    stop_process(process)


def pytest_configure(config):
    logging.getLogger(__name__).info("test_session_start", extra={"run_dir": str(RUN_DIR)})


# Files whose tests race the wall clock (a spread that lasts under a second, a restart within a deadline, a
# feed's reconnect): `make test` runs them alone, before the rest of the suite runs on two xdist workers.
TIMING_SENSITIVE = (
    "arb/test_controls.py",
    "arb/test_engine.py",
    "arb/test_process.py",
    "arb/test_risk_journey.py",
    "core/exchanges/perp/test_paradex.py",
    "core/supervision/test_control.py",
    "core/webhooks/test_cadence.py",
    "integration/test_heartbeat_journey.py",
    "integration/test_infrastructure_outage.py",
    "integration/test_make_run.py",
    "integration/test_tradingview_webhook_journey.py",
    "webapp/test_heartbeat.py",
    # Retries with backoff against a 30 s deadline: twice in six fresh-clone runs, on the xdist lane, a delivery
    # stayed queued for 30 s while the module's own worker was idle (cause not found; see the closing note).
    "workers/test_notifications.py",
)


def pytest_collection_modifyitems(config, items):
    """`make test-fast` leaves out `browser` and `slow` tests. Marked here by place and by need: every
    `*_browser.py` file drives Chromium, every journey under tests/integration runs the whole platform,
    and every test that needs the real Celery worker process waits for it; the tests listed in
    tests/slow_tests.txt (measured, scripts/slow_tests.py) and those carrying the mark themselves too.
    `timing` marks the files of TIMING_SENSITIVE."""
    integration = ROOT / "tests" / "integration"
    timing = {ROOT / "tests" / path for path in TIMING_SENSITIVE}
    listed = (ROOT / "tests" / "slow_tests.txt").read_text().splitlines()
    measured_slow = {line for line in listed if line and not line.startswith("#")}
    for item in items:
        if item.nodeid in measured_slow:
            item.add_marker(pytest.mark.slow)
        path = item.path
        if path.name.endswith("_browser.py"):
            item.add_marker(pytest.mark.browser)
        if integration in path.parents or "celery_worker_process" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
        if path in timing:
            item.add_marker(pytest.mark.timing)


@pytest.fixture(scope="session")
def live_server(infra):
    """The real web app served over HTTP on a free port (threaded WSGI server), for browsers and HTTP clients."""
    import threading

    from werkzeug.serving import make_server

    from webapp import create_app

    port = free_port()
    server = make_server("127.0.0.1", port, create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (Playwright's own browser download does not work here).

    One per test module: while Playwright's sync API is open it keeps an event loop running in the main
    thread, and a later test calling asyncio.run() (the simulators' tests) would fail."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it with apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield instance
        instance.close()


# Playwright can click an htmx button in the few milliseconds between the page's HTML being parsed and
# htmx binding it on DOMContentLoaded (a loaded CI machine widens that gap); such a click would do
# nothing. This holds clicks on htmx elements made before then and replays them once htmx has bound
# the page (htmx binds in its DOMContentLoaded listener; the timeout runs after every listener).
HOLD_CLICKS_UNTIL_HTMX_BOUND = """
(() => {
  const held = [];
  let bound = false;
  const HTMX = "[hx-get],[hx-post],[hx-put],[hx-patch],[hx-delete]";
  document.addEventListener("click", (event) => {
    if (bound) return;
    const target = event.target instanceof Element && event.target.closest(HTMX);
    if (!target) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    held.push(target);
  }, true);
  document.addEventListener("DOMContentLoaded", () => setTimeout(() => {
    bound = true;
    held.splice(0).forEach((element) => element.click());
  }, 0));
})();
"""


@pytest.fixture()
def page(browser, live_server):
    from playwright.sync_api import expect

    # A loaded two-core CI machine answers some page actions (a venue check, a backtest) in more than
    # Playwright's default 5 s; the assertions wait up to 15 s.
    expect.set_options(timeout=15_000)
    context = browser.new_context(base_url=live_server)
    context.add_init_script(HOLD_CLICKS_UNTIL_HTMX_BOUND)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture()
def browser_login(page, make_user):
    """Log a fresh trader in through the real login form; returns (user, password)."""

    def do_login(is_admin: bool = False):
        user, password = make_user(is_admin=is_admin)
        page.goto("/login")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/")
        return user, password

    return do_login


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Every test starts with empty login rate-limit windows: the suite logs in from one IP hundreds of
    times, which would otherwise trip the (real, Redis-backed) limiter for unrelated tests."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=0.2)
    try:
        keys = list(client.scan_iter("LIMITS*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass  # no Redis started yet: nothing to reset
    finally:
        client.close()
