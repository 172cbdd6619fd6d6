"""Journey: an admin-created trader logs in, changes password, logs out; no open sign-up."""

from tests.support import csrf_token_from


def test_login_page_has_no_signup(client, infra):
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in" in page
    assert "sign up" not in page.lower() and "register" not in page.lower()
    assert client.get("/register").status_code == 404


def test_pages_require_login(client, infra):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_login_logout(client, make_user, login):
    user, password = make_user()
    response = login(user.username, password)
    assert response.status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert user.username in home
    token = csrf_token_from(home)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_with_clear_message(client, make_user, login):
    user, _ = make_user()
    response = login(user.username, "not-the-password")
    assert response.status_code == 200
    assert "Wrong username or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_disabled_user_cannot_log_in(client, make_user, login):
    from core import accounts
    from core.infra.db import session_scope

    user, password = make_user()
    with session_scope() as session:
        accounts.set_active(session, user.username, False)
    assert "Wrong username" in login(user.username, password).get_data(as_text=True)


def test_post_without_csrf_token_is_refused(client, make_user):
    user, password = make_user()
    response = client.post("/login", data={"username": user.username, "password": password})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_change_password(client, logged_in, login, make_user):
    from core.infra.db import new_session
    from core.models import User

    page = client.get("/account/password").get_data(as_text=True)
    token = csrf_token_from(page)
    bad = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current": "wrong-password",
            "new": "a-new-password-1",
            "confirm": "a-new-password-1",
        },
    )
    assert bad.status_code == 400
    assert "current password is wrong" in bad.get_data(as_text=True)
    short = client.post(
        "/account/password", data={"csrf_token": token, "current": "x", "new": "short", "confirm": "short"}
    )
    assert short.status_code == 400
    with new_session() as session:
        assert session.get(User, logged_in.id).check_password("a-new-password-1") is False


def test_change_password_then_login_with_new_one(app, make_user, login):
    from tests.support import remember_secret

    user, password = make_user()
    c = app.test_client()
    login(user.username, password, test_client=c)
    token = csrf_token_from(c.get("/account/password").get_data(as_text=True))
    new = remember_secret("brand-new-password-42")
    response = c.post("/account/password", data={"csrf_token": token, "current": password, "new": new, "confirm": new})
    assert response.status_code == 302
    fresh = app.test_client()
    assert login(user.username, password, test_client=fresh).status_code == 200  # old one refused
    assert login(user.username, new, test_client=fresh).status_code == 302


def test_login_is_rate_limited(app, make_user, login, redis_client):
    user, _ = make_user()
    c = app.test_client()
    statuses = [login(user.username, f"wrong-{i}", test_client=c).status_code for i in range(7)]
    assert statuses[:5] == [200] * 5
    assert 429 in statuses[5:]


def test_session_cookie_is_httponly(client, make_user, login):
    user, password = make_user()
    response = login(user.username, password)
    session_cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie


def test_open_redirect_is_ignored(client, make_user):
    user, password = make_user()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login?next=//evil.example/", data={"username": user.username, "password": password, "csrf_token": token}
    )
    assert response.headers["Location"] == "/"
