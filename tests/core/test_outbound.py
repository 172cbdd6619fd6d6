"""URLs users give (broker base URL, AI endpoint) never make the platform call its own machine or network."""

from __future__ import annotations

import pytest

from core.infra.config import SecurityConfig, get_settings
from core.outbound import UnsafeUrl, check_url


def settings_with(**security):
    settings = get_settings()
    return settings.model_copy(
        update={"file": settings.file.model_copy(update={"security": SecurityConfig(**security)})}
    )


STRICT = settings_with()  # what config.yaml ships: nothing private

REFUSED = [
    "http://127.0.0.1:5432/",
    "http://127.1/",
    "http://localhost:6379",
    "http://[::1]:8000/",
    "http://0.0.0.0:80",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fd00::1]/",
    "http://2130706433/",  # 127.0.0.1 written as one number: resolves to loopback
]


@pytest.mark.parametrize("url", REFUSED)
def test_local_and_private_addresses_are_refused(url):
    with pytest.raises(UnsafeUrl, match="config.yaml"):
        check_url(url, STRICT)


@pytest.mark.parametrize("url", ["ftp://1.1.1.1/", "file:///etc/passwd", "gopher://1.1.1.1", "https://", "http:///x"])
def test_only_http_urls_with_a_host(url):
    with pytest.raises(UnsafeUrl, match="https://host"):
        check_url(url, STRICT)


def test_credentials_in_the_url_are_refused():
    with pytest.raises(UnsafeUrl, match="user name"):
        check_url("https://user:pw@1.1.1.1/", STRICT)


def test_public_addresses_pass():
    check_url("https://1.1.1.1/api", STRICT)  # raises UnsafeUrl when refused
    check_url("http://[2606:4700:4700::1111]:8080", STRICT)
    with pytest.raises(UnsafeUrl):  # the same settings refuse a private neighbour: the passes are not vacuous
        check_url("https://10.1.1.1/api", STRICT)


def test_every_address_of_a_name_is_checked():
    def resolver(host, port):
        return ["93.184.216.34", "10.1.2.3"]  # one public, one private: a rebinding setup

    with pytest.raises(UnsafeUrl, match="resolves to one"):
        check_url("https://venue.example/", STRICT, resolver=resolver)
    check_url("https://venue.example/", STRICT, resolver=lambda host, port: ["93.184.216.34"])


def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(UnsafeUrl, match="does not resolve"):
        check_url("https://no-such-host.invalid/", STRICT)


def test_the_simulator_url_is_always_allowed():
    sim = STRICT.sim_url
    check_url(sim + "/api/v3/account", STRICT)
    with pytest.raises(UnsafeUrl):
        check_url(sim.rsplit(":", 1)[0] + ":6379", STRICT)  # same host, another port: refused


def test_admin_can_allow_some_networks_or_all():
    check_url("http://192.168.1.20:8000/", settings_with(allowed_networks=["192.168.1.0/24"]))
    with pytest.raises(UnsafeUrl):
        check_url("http://192.168.2.20:8000/", settings_with(allowed_networks=["192.168.1.0/24"]))
    check_url("http://127.0.0.1:11434/", settings_with(allow_private_urls=True))


def test_a_bad_network_in_config_stops_start_up():
    with pytest.raises(ValueError, match="192.168.1.0/33"):
        SecurityConfig(allowed_networks=["192.168.1.0/33"])


@pytest.fixture(scope="module")
def local_server():
    """A real HTTP server on loopback: what a name that rebinds to 127.0.0.1 after the check would reach."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_a_guarded_session_checks_the_address_each_connection_reached(local_server):
    import requests

    from core.outbound import guard

    for url in (f"http://127.0.0.1:{local_server}/", f"http://localhost:{local_server}/"):
        with guard(requests.Session(), STRICT) as http, pytest.raises(requests.ConnectionError, match="refused"):
            http.get(url, timeout=5)
    allowed = settings_with(allowed_networks=["127.0.0.0/8", "::1/128"])
    with guard(requests.Session(), allowed) as http:
        assert http.get(f"http://localhost:{local_server}/", timeout=5).text == "ok"


def test_the_simulator_is_reachable_through_a_guarded_session(local_server):
    import requests

    from core.outbound import guard

    settings = STRICT.model_copy(
        update={
            "file": STRICT.file.model_copy(
                update={"sim": STRICT.file.sim.model_copy(update={"host": "127.0.0.1", "port": local_server})}
            )
        }
    )
    with guard(requests.Session(), settings) as http:
        assert http.get(f"http://127.0.0.1:{local_server}/api", timeout=5).text == "ok"
