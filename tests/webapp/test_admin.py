"""Journey: an admin creates a trader from the admin page, disables them; traders never see admin pages."""

from tests.support import csrf_token_from, remember_secret


def test_trader_gets_404_on_admin_pages(client, logged_in):
    for url in ("/admin/users", "/admin/system", "/admin/system/status"):
        assert client.get(url).status_code == 404
    assert "Admin" not in client.get("/").get_data(as_text=True).split("<main>")[0]


def test_admin_creates_and_disables_user(app, make_user, login):
    admin, password = make_user(is_admin=True)
    c = app.test_client()
    login(admin.username, password, test_client=c)
    page = c.get("/admin/users").get_data(as_text=True)
    token = csrf_token_from(page)
    new_password = remember_secret("initial-password-77")
    response = c.post(
        "/admin/users",
        data={"csrf_token": token, "username": "newtrader_" + admin.username[:6], "password": new_password},
    )
    assert response.status_code == 302
    listing = c.get("/admin/users").get_data(as_text=True)
    assert "newtrader_" + admin.username[:6] in listing
    duplicate = c.post(
        "/admin/users",
        data={"csrf_token": token, "username": "newtrader_" + admin.username[:6], "password": new_password},
    )
    assert duplicate.status_code == 400 and "already exists" in duplicate.get_data(as_text=True)
    weak = c.post("/admin/users", data={"csrf_token": token, "username": "weakling", "password": "123"})
    assert weak.status_code == 400 and "between 10 and 256 characters" in weak.get_data(as_text=True)
    c.post(f"/admin/users/newtrader_{admin.username[:6]}/active", data={"csrf_token": token, "active": "0"})
    assert "disabled" in c.get("/admin/users").get_data(as_text=True)


def test_system_page_shows_health(app, make_user, login, redis_client):
    from core.infra.liveness import write_liveness

    write_liveness("worker", {"queues": ["orders"]})
    admin, password = make_user(is_admin=True)
    c = app.test_client()
    login(admin.username, password, test_client=c)
    page = c.get("/admin/system").get_data(as_text=True)
    assert "postgres" in page and "redis" in page and "worker" in page
    assert 'hx-trigger="every 3s"' in page
    partial = c.get("/admin/system/status").get_data(as_text=True)
    assert "alive" in partial


def test_admin_system_page_says_how_to_log_in_to_flower(app, make_user, login):
    admin, password = make_user(is_admin=True)
    c = app.test_client()
    login(admin.username, password, test_client=c)
    page = c.get("/admin/system").get_data(as_text=True)
    assert "Celery Flower" in page and "<code>FLOWER_BASIC_AUTH</code>" in page and "<code>.env</code>" in page


def test_system_page_shows_restarts_and_crash_loops(app, make_user, login):
    from core.infra.config import get_settings
    from core.supervision.record import ProcessRecord, save

    feeds = ProcessRecord(state="RUNNING", restarts=2)
    feeds.exited(None, "terminated by SIGKILL", 1796645369.0)
    crasher = ProcessRecord(state="FATAL", restarts=3, fatal=True)
    crasher.exited(3, "exit status 3", 1796645370.0)
    record = get_settings().var_dir / "supervision.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    save(record, {"feeds": feeds, "crasher": crasher})
    try:
        admin, password = make_user(is_admin=True)
        c = app.test_client()
        login(admin.username, password, test_client=c)
        page = c.get("/admin/system").get_data(as_text=True)
    finally:
        record.unlink()
    feeds_row = page[page.index('<tr data-process="feeds">') :].split("</tr>")[0]
    assert "terminated by SIGKILL" in feeds_row and '<td class="num">2</td>' in feeds_row
    assert "2026-12-07 12:09:29 UTC" in feeds_row and "crash loop" not in feeds_row
    crasher_row = page[page.index('<tr data-process="crasher">') :].split("</tr>")[0]
    assert "(code 3)" in crasher_row and "crash loop: gave up" in crasher_row


def test_each_queue_links_to_its_workers_task_list_in_flower(app, make_user, login, redis_client):
    import socket
    from pathlib import Path

    from core.infra.liveness import write_liveness
    from webapp.admin import queue_task_lists

    report = {"processes": {"worker": {"info": {"queues": ["orders"]}}, "web": {"info": {}}, "feeds": {"info": None}}}
    with app.test_request_context("/admin/system", base_url="http://admin.example:8000"):
        links = queue_task_lists(report)
    assert links == {"orders": f"http://admin.example:5555/tasks?worker=worker%40{socket.gethostname()}"}
    # On the page, every queue whose worker reported in gets its link.
    write_liveness("maintenance", {"queues": ["maintenance"]})
    admin, password = make_user(is_admin=True)
    c = app.test_client()
    login(admin.username, password, test_client=c)
    partial = c.get("/admin/system/status").get_data(as_text=True)
    assert partial.count('class="queue-tasks"') >= 1 and "tasks?worker=" in partial
    # The Procfile is where task events are decided: on for the low-rate workers, off for orders.
    procfile_text = (Path(__file__).resolve().parents[2] / "Procfile").read_text()
    procfile = dict(line.split(": ", 1) for line in procfile_text.splitlines() if ": " in line)
    assert all(" -E " in procfile[name] for name in ("maintenance", "backtester", "bots"))
    assert " -E " not in procfile["worker"]
