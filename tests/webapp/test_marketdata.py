"""Market data page: CSV import and download as Celery jobs, progress, reports, ownership, bad input."""

import io
import re
import secrets
import time
from pathlib import Path

import pytest

from core.candles import jobs
from tests.support import csrf_token_from

T0 = 1_735_689_600_000


def csv_bytes(rows: int, bad_lines: tuple[int, ...] = ()) -> bytes:
    lines = ["open_time,open,high,low,close,volume"]
    for i in range(rows):
        lines.append("garbage" if i + 2 in bad_lines else f"{T0 + i * 60_000},10,11,9,10.5,2")
    return ("\n".join(lines) + "\n").encode()


def token(client) -> str:
    return csrf_token_from(client.get("/marketdata/").get_data(as_text=True))


def wait_job_done(client, job_id: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        html = client.get(f"/marketdata/jobs/{job_id}").get_data(as_text=True)
        if "hx-trigger" not in html:
            return html
        time.sleep(0.2)
    raise AssertionError("job did not finish")


@pytest.fixture()
def admin(client, make_user, login):
    user, password = make_user(is_admin=True)
    assert login(user.username, password).status_code == 302
    return user


def upload(client, symbol: str, body: bytes, name: str = "mine.csv"):
    return client.post(
        "/marketdata/import",
        data={
            "csrf_token": token(client),
            "venue": "binance",
            "symbol": symbol.lower(),
            "timeframe": "1m",
            "file": (io.BytesIO(body), name),
        },
        content_type="multipart/form-data",
    )


def test_an_admin_imports_through_the_page_on_a_worker_all_rows_or_none(client, admin, celery_worker_process):
    symbol = "M" + secrets.token_hex(3).upper()
    assert upload(client, symbol, csv_bytes(12, bad_lines=(5,))).status_code == 302
    page = client.get("/marketdata/").get_data(as_text=True)
    job_id = re.search(r'id="job-([0-9a-f-]+)"', page).group(1)
    assert f"import mine.csv → binance {symbol} 1m" in page
    refused = wait_job_done(client, job_id)
    assert "failed" in refused and "mine.csv: nothing imported, 1 row(s) refused, the first at line 5" in refused
    assert "11 rows · <strong>0</strong> added" in refused
    assert "<li>line 5: open_time is not a finite number (&#39;garbage&#39;)</li>" in refused
    assert f"<td>{symbol}</td>" not in client.get("/marketdata/").get_data(as_text=True)

    assert upload(client, symbol, csv_bytes(12)).status_code == 302
    job_id = re.search(r'id="job-([0-9a-f-]+)"', client.get("/marketdata/").get_data(as_text=True)).group(1)
    assert "12 rows · <strong>12</strong> added · 0 duplicates skipped" in wait_job_done(client, job_id)
    assert f'<td>{symbol}</td><td>1m</td><td class="num">12</td>' in client.get("/marketdata/").get_data(as_text=True)


def test_a_trader_cannot_import_into_the_shared_store_and_does_not_see_the_form(client, logged_in, redis_client):
    page = client.get("/marketdata/").get_data(as_text=True)
    assert 'id="import-form"' not in page and 'id="download-form"' in page
    response = upload(client, "TRADERUSDT", csv_bytes(3))
    assert response.status_code == 403
    assert jobs.user_jobs(logged_in.id) == []


def test_another_users_job_is_not_found(client, logged_in, make_user, login, redis_client):
    theirs = jobs.start_import(
        logged_in.id + 100_000,
        Path("/nonexistent"),
        venue="binance",
        symbol="XUSDT",
        timeframe="1m",
        filename="someone else's",
    )
    assert client.get(f"/marketdata/jobs/{theirs}").status_code == 404
    assert client.get("/marketdata/jobs/not-a-job").status_code == 404


def test_bad_forms_are_refused_with_reasons(client, admin):
    csrf = token(client)
    no_file = client.post(
        "/marketdata/import",
        data={"csrf_token": csrf, "venue": "binance", "symbol": "BTCUSDT", "timeframe": "1m"},
        content_type="multipart/form-data",
    )
    assert no_file.status_code == 400 and "choose a CSV file" in no_file.get_data(as_text=True)
    bad_symbol = client.post(
        "/marketdata/import",
        data={
            "csrf_token": csrf,
            "venue": "binance",
            "symbol": "BTC/USDT",
            "timeframe": "1m",
            "file": (io.BytesIO(csv_bytes(2)), "x.csv"),
        },
        content_type="multipart/form-data",
    )
    assert bad_symbol.status_code == 400 and "letters and digits only" in bad_symbol.get_data(as_text=True)
    backwards = client.post(
        "/marketdata/download",
        data={
            "csrf_token": csrf,
            "venue": "sim",
            "symbol": "BTCUSDT",
            "timeframe": "1h",
            "start": "2025-02-01",
            "end": "2025-01-01",
        },
    )
    assert backwards.status_code == 400 and "must not be before the start" in backwards.get_data(as_text=True)
    unknown_tf = client.post(
        "/marketdata/download",
        data={
            "csrf_token": csrf,
            "venue": "sim",
            "symbol": "BTCUSDT",
            "timeframe": "2h",
            "start": "2025-01-01",
            "end": "2025-01-02",
        },
    )
    assert unknown_tf.status_code == 400
    no_csrf = client.post(
        "/marketdata/download",
        data={"venue": "sim", "symbol": "BTCUSDT", "timeframe": "1h", "start": "2025-01-01", "end": "2025-01-02"},
    )
    assert no_csrf.status_code == 400
    no_csrf_upload = client.post(
        "/marketdata/import",
        data={"venue": "binance", "symbol": "BTCUSDT", "timeframe": "1m", "file": (io.BytesIO(csv_bytes(2)), "x.csv")},
        content_type="multipart/form-data",
    )
    assert no_csrf_upload.status_code == 400 and "CSRF" in no_csrf_upload.get_data(as_text=True)


def test_a_file_larger_than_the_app_limit_is_accepted(client, admin, redis_client):
    big = csv_bytes(40_000)  # about 1.5 MB
    assert len(big) > 1024 * 1024
    response = client.post(
        "/marketdata/import",
        data={
            "csrf_token": token(client),
            "venue": "binance",
            "symbol": "BIGUSDT",
            "timeframe": "1m",
            "file": (io.BytesIO(big), "big.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302


@pytest.mark.browser
def test_upload_a_csv_and_watch_the_job_finish(page, browser_login, celery_worker_process):
    symbol = "P" + secrets.token_hex(3).upper()
    browser_login(is_admin=True)
    page.goto("/marketdata/")
    page.set_input_files(
        "#import-form input[name=file]",
        files=[{"name": f"{symbol}-1m.csv", "mimeType": "text/csv", "buffer": csv_bytes(30, bad_lines=(4, 9))}],
    )
    page.fill("#import-form input[name=symbol]", symbol)
    page.click("#import-form button[type=submit]")
    page.wait_for_selector(".md-job .pill.bad", timeout=30_000)
    assert "nothing imported, 2 row(s) refused" in page.locator(".md-job .error").first.inner_text()
    page.click(".md-job details summary")
    assert page.locator(".md-bad li").all_inner_texts() == [
        "line 4: open_time is not a finite number ('garbage')",
        "line 9: open_time is not a finite number ('garbage')",
    ]
    page.set_input_files(
        "#import-form input[name=file]",
        files=[{"name": f"{symbol}-1m.csv", "mimeType": "text/csv", "buffer": csv_bytes(30)}],
    )
    page.fill("#import-form input[name=symbol]", symbol)
    page.click("#import-form button[type=submit]")
    page.wait_for_selector(".md-job .pill.ok", timeout=30_000)
    assert "30 rows · 30 added · 0 duplicates skipped" in page.locator(".md-job .md-report").first.inner_text()
    page.reload()
    assert page.locator("#coverage").inner_text().count(symbol) == 1
