"""The AI assistant client against a real local server speaking OpenAI's chat completions protocol."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.strategies.assistant import (
    AssistantBadResponse,
    AssistantClient,
    AssistantNotConfigured,
    AssistantUnavailable,
    chat_completions_url,
    extract_code,
)
from core.strategies.templates import get_template
from tests.support import free_port, remember_secret

GOOD = "Here is an RSI strategy.\n```python\n" + get_template("rsi_mean_reversion").code + "```\nGood luck."
FORBIDDEN = "Sure:\n```python\nimport os\nfrom core.strategies import Strategy\n\nclass X(Strategy):\n    pass\n```"


class ChatServer:
    """A threaded HTTP server on loopback; `replies` maps a word in the user's message to a behaviour."""

    def __init__(self):
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                prompt = body["messages"][-1]["content"]
                if "html" in prompt:
                    return self._send(200, b"<html>proxy login</html>", "text/html")
                if "redirect" in prompt:
                    self.send_response(307)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if "unauthorized" in prompt:
                    detail = f"Incorrect API key provided: {self.headers.get('Authorization', '')[7:]}"
                    return self._send(401, json.dumps({"error": {"message": detail}}).encode())
                content = {"forbidden": FORBIDDEN, "chat": "No code, just advice."}.get(prompt, GOOD)
                reply = {
                    "id": "x",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                }
                self._send(200, json.dumps(reply).encode())

            def _send(self, status, payload, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def chat_server():
    server = ChatServer()
    yield server
    server.close()


@pytest.fixture()
def api_key():
    return remember_secret("sk-test-assistant-key-0123456789")


def ask(client: AssistantClient, text: str):
    return client.complete([{"role": "user", "content": text}])


def test_writes_a_validated_strategy_through_the_protocol(chat_server, api_key):
    client = AssistantClient(chat_server.url, api_key, "qwen2.5-coder", timeout=10)
    reply = ask(client, "write me an rsi strategy")
    assert reply.code == get_template("rsi_mean_reversion").code
    assert reply.validation.ok and reply.validation.class_name == "RsiMeanReversion"
    assert "Good luck" in reply.text
    request = chat_server.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {api_key}"
    assert request["body"]["model"] == "qwen2.5-coder"
    system = request["body"]["messages"][0]
    assert system["role"] == "system"
    for fragment in ("should_long", "self.indicator", "numpy", "statistics", "crossed_above", "no dunders"):
        assert fragment in system["content"]


def test_forbidden_code_from_the_model_is_flagged_before_insertion(chat_server):
    reply = ask(AssistantClient(chat_server.url, None, "m", timeout=10), "forbidden")
    assert reply.code is not None and not reply.validation.ok
    assert reply.validation.errors[0]["line"] == 1 and "'os'" in reply.validation.errors[0]["message"]
    assert "Authorization" not in chat_server.requests[-1]["headers"]


def test_reply_without_code_has_no_validation(chat_server):
    reply = ask(AssistantClient(chat_server.url, None, "m", timeout=10), "chat")
    assert (reply.code, reply.validation, reply.text) == (None, None, "No code, just advice.")


def test_current_code_goes_into_the_prompt(chat_server):
    client = AssistantClient(chat_server.url + "/v1/", None, "m", timeout=10)
    client.complete([{"role": "user", "content": "tighten the stop"}], current_code="# MY-CURRENT-CODE")
    assert chat_server.requests[-1]["path"] == "/v1/chat/completions"
    assert "# MY-CURRENT-CODE" in chat_server.requests[-1]["body"]["messages"][0]["content"]


def test_not_configured_says_how_to_configure():
    for client in (AssistantClient(None, None, None), AssistantClient("http://127.0.0.1:1", None, "")):
        assert not client.configured
        with pytest.raises(AssistantNotConfigured, match="AI_BASE_URL"):
            ask(client, "hi")


def test_the_setup_guide_names_each_setting_and_whether_it_is_set_never_its_value(api_key):
    guide = AssistantClient("http://127.0.0.1:1", api_key, "").setup_keys()
    assert [(k.name, k.required, k.is_set) for k in guide] == [
        ("AI_BASE_URL", True, True),
        ("AI_MODEL", True, False),
        ("AI_API_KEY", False, True),
    ]
    assert all(api_key not in f"{k.what} {k.example}" for k in guide)


def test_unreachable_server_is_a_clear_error_without_the_key(api_key):
    client = AssistantClient(f"http://127.0.0.1:{free_port()}", api_key, "m", timeout=5)
    with pytest.raises(AssistantUnavailable, match="cannot reach") as info:
        ask(client, "hi")
    assert api_key not in str(info.value)


def test_http_error_never_echoes_the_key(chat_server, api_key, caplog):
    client = AssistantClient(chat_server.url, api_key, "m", timeout=10)
    with caplog.at_level(logging.DEBUG), pytest.raises(AssistantUnavailable, match="HTTP 401") as info:
        ask(client, "unauthorized")
    assert "Incorrect API key provided: ***" in str(info.value)
    assert api_key not in str(info.value) and api_key not in caplog.text
    assert api_key not in repr(client) and "***" in repr(client)


def test_non_json_answer_is_a_bad_response(chat_server):
    with pytest.raises(AssistantBadResponse, match="OpenAI-style"):
        ask(AssistantClient(chat_server.url, None, "m", timeout=10), "html please")


def test_chat_must_end_with_the_user(chat_server):
    client = AssistantClient(chat_server.url, None, "m", timeout=10)
    for messages in ([], [{"role": "assistant", "content": "x"}], [{"role": "system", "content": "override"}]):
        with pytest.raises(ValueError):
            client.complete(messages)


def test_code_extraction_and_urls():
    assert extract_code("```py\na = 1\n```\n```python\nclass A(Strategy):\n    pass\n```") == (
        "class A(Strategy):\n    pass\n"
    )
    assert extract_code("```\nx = 1\n```") == "x = 1\n"
    assert extract_code("```json\n{}\n```") is None and extract_code("") is None
    assert chat_completions_url("http://h:11434") == "http://h:11434/v1/chat/completions"
    assert chat_completions_url("https://api.openai.com/v1/") == "https://api.openai.com/v1/chat/completions"


@pytest.mark.parametrize("url", ["http://169.254.169.254", "http://10.0.0.7:11434", "http://[::1]:8080"])
def test_an_endpoint_on_a_private_network_is_refused_before_any_request(url, api_key):
    with pytest.raises(AssistantUnavailable, match="URL is refused.*config.yaml"):
        ask(AssistantClient(url, api_key, "m", timeout=5), "hi")


def test_a_redirect_is_not_followed(chat_server):
    with pytest.raises(AssistantUnavailable, match="redirect, which is not followed"):
        ask(AssistantClient(chat_server.url, None, "m", timeout=10), "redirect")
    assert len(chat_server.requests) == 1
