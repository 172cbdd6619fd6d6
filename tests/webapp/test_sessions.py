"""Journey: a trader signed in on two devices signs out (or changes password) on one; the other is out too.

Sessions and remember-me cookies carry the user's session epoch, checked on every request."""

from __future__ import annotations

import pytest

from core import accounts
from core.infra.db import session_scope
from tests.support import csrf_token_from, remember_secret
from webapp.auth import local_target


def _signed_in(client) -> bool:
    return client.get("/").status_code == 200


def _post(client, path: str, **data):
    token = csrf_token_from(client.get("/account/password").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


def _remember_cookie(response) -> str:
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    return cookie.split(";", 1)[0].split("=", 1)[1]


def _remembered(app, value: str):
    """A device that kept only the remember-me cookie (its browser session ended)."""
    device = app.test_client()
    device.set_cookie("remember_token", value)
    return device


def _login_remembered(app, login, user, password):
    device = app.test_client()
    token = csrf_token_from(device.get("/login").get_data(as_text=True))
    response = device.post(
        "/login", data={"username": user.username, "password": password, "remember": "y", "csrf_token": token}
    )
    assert response.status_code == 302
    return device, _remember_cookie(response)


def test_sign_out_on_one_device_signs_out_every_device(app, make_user, login):
    user, password = make_user()
    laptop, phone = app.test_client(), app.test_client()
    login(user.username, password, test_client=laptop)
    tablet, remembered = _login_remembered(app, login, user, password)
    assert login(user.username, password, test_client=phone).status_code == 302
    assert _signed_in(laptop) and _signed_in(phone) and _signed_in(_remembered(app, remembered))
    assert _post(phone, "/logout").status_code == 302
    assert not _signed_in(phone) and not _signed_in(laptop) and not _signed_in(tablet)
    assert not _signed_in(_remembered(app, remembered))  # the remember-me cookie is dead too


def test_password_change_signs_out_the_other_devices_but_not_this_one(app, make_user, login):
    user, password = make_user()
    here, elsewhere = app.test_client(), app.test_client()
    login(user.username, password, test_client=here)
    _, remembered = _login_remembered(app, login, user, password)
    login(user.username, password, test_client=elsewhere)
    new = remember_secret("a-fresh-password-77")
    assert _post(here, "/account/password", current=password, new=new, confirm=new).status_code == 302
    assert _signed_in(here)
    assert not _signed_in(elsewhere) and not _signed_in(_remembered(app, remembered))


def test_disabling_a_user_ends_their_sessions_at_once(app, make_user, login):
    user, password = make_user()
    device = app.test_client()
    login(user.username, password, test_client=device)
    assert _signed_in(device)
    with session_scope() as session:
        accounts.set_active(session, user.username, False)
    assert not _signed_in(device)
    with session_scope() as session:
        accounts.set_active(session, user.username, True)
    assert not _signed_in(device)  # re-enabling does not bring the old session back


def test_a_role_change_ends_the_sessions_signed_in_with_the_old_role(app, make_user, login):
    from core.models import User

    admin, password = make_user(is_admin=True)
    device = app.test_client()
    login(admin.username, password, test_client=device)
    assert device.get("/admin/users").status_code == 200
    with session_scope() as session:
        epoch = session.get(User, admin.id).session_epoch
        session.get(User, admin.id).is_admin = False
    assert not _signed_in(device)
    with session_scope() as session:
        user = session.get(User, admin.id)
        user.is_admin = False  # setting the same value changes nothing
        assert user.session_epoch == epoch + 1


def test_remember_cookie_is_random_signed_and_new_at_each_sign_in(app, make_user, login):
    user, password = make_user()
    _, first = _login_remembered(app, login, user, password)
    _, second = _login_remembered(app, login, user, password)
    assert first != second
    user_part, _, signature = first.partition("|")
    assert user_part.startswith(f"{user.id}:") and len(user_part.split(":")[2]) >= 20 and len(signature) == 128
    assert _signed_in(_remembered(app, first)) and _signed_in(_remembered(app, second))
    forged = f"{user.id}:0:guess|{signature}"
    assert not _signed_in(_remembered(app, forged))
    bare_id = f"{user.id}|{signature}"  # the shape of cookies before session epochs
    assert not _signed_in(_remembered(app, bare_id))


NASTY_TARGETS = [
    "//evil.example/",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https://evil.example/",
    "http:evil.example",
    "HTTPS://evil.example",
    "javascript:alert(1)",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "/\x00/evil",
    "evil.example",
    "",
    "//evil.example@localhost/",
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("target", NASTY_TARGETS)
def test_next_never_leaves_the_site(target):
    assert local_target(target) is None


@pytest.mark.parametrize("target", ["/", "/trading/?broker=3", "/bots/7#log", "/%2F%2Fevil.example"])
def test_next_keeps_paths_of_this_site(target):
    assert local_target(target) == target


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example", "https://evil.example/", "/\t/evil"])
def test_sign_in_with_a_hostile_next_lands_home(client, make_user, target):
    user, password = make_user()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"username": user.username, "password": password, "csrf_token": token},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_sign_in_with_a_local_next_goes_there(client, make_user):
    user, password = make_user()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login?next=/trading/history", data={"username": user.username, "password": password, "csrf_token": token}
    )
    assert response.headers["Location"] == "/trading/history"
