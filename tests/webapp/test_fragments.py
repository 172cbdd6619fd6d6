"""A fragment URL opened directly answers a whole page; htmx still gets the bare fragment."""

from __future__ import annotations


def test_a_fragment_url_opened_directly_renders_inside_the_layout(client, logged_in):
    page = client.get("/trading/recent").get_data(as_text=True)
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert 'href="/brokers/"' in page  # the navigation of the layout
    assert 'Part of the <a href="/trading/">Trading page</a>' in page
    assert "No orders yet." in page  # and the fragment itself


def test_htmx_gets_the_bare_fragment(client, logged_in):
    fragment = client.get("/trading/recent", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "No orders yet." in fragment
    assert "<!doctype" not in fragment.lower() and 'href="/brokers/"' not in fragment


def test_full_pages_errors_and_json_pass_through_untouched(client, logged_in):
    page = client.get("/trading/").get_data(as_text=True)
    assert page.lower().count("<!doctype html>") == 1 and "Part of the" not in page
    missing = client.get("/trading/orders/999999999")
    assert missing.status_code == 404 and "Part of the" not in missing.get_data(as_text=True)
    health = client.get("/healthz")
    assert health.mimetype == "application/json" and "Part of the" not in health.get_data(as_text=True)
