"""Journey: a trader asks the AI panel for a strategy; a refused answer cannot be inserted, a valid one
can, and the chat goes to a real local server speaking the OpenAI /v1/chat/completions protocol."""

from __future__ import annotations

import html
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.strategies.templates import get_template
from tests.support import csrf_token_from, remember_secret

API_KEY = remember_secret("sk-test-" + secrets.token_urlsafe(16))
FORBIDDEN_ANSWER = (
    "Here you go:\n```python\nimport os\nfrom core.strategies import Strategy\n\n\n"
    "class Bad(Strategy):\n    pass\n```\n"
)
VALID_CODE = get_template("bollinger_breakout").code.replace("class BollingerBreakout", "class AiBreakout")
VALID_ANSWER = f"Fixed: no os import any more.\n```python\n{VALID_CODE}```\n"


class ChatServer:
    """A minimal OpenAI-compatible chat server: answers from a script, records every request."""

    def __init__(self, answers: list[str]):
        self.answers = list(answers)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    self._reply(401, {"error": {"message": "bad key"}})
                    return
                content = server.answers.pop(0)
                self._reply(
                    200,
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                        ],
                    },
                )

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def chat_server():
    server = ChatServer([FORBIDDEN_ANSWER, VALID_ANSWER])
    yield server
    server.close()


@pytest.fixture()
def ai_client(infra, chat_server, make_user):
    from core.infra.bus import get_redis
    from core.infra.config import get_settings
    from webapp import create_app

    for key in get_redis().scan_iter("*LIMITER*"):
        get_redis().delete(key)
    settings = get_settings()
    secrets_ = settings.secrets.model_copy(
        update={"AI_BASE_URL": chat_server.url + "/v1", "AI_API_KEY": API_KEY, "AI_MODEL": "local-coder"}
    )
    app = create_app(settings.model_copy(update={"secrets": secrets_}))
    client = app.test_client()
    user, password = make_user()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    assert (
        client.post("/login", data={"username": user.username, "password": password, "csrf_token": token}).status_code
        == 302
    )
    return client


def _ask(client, strategy_id, token, message, history, code):
    response = client.post(
        f"/strategies/{strategy_id}/assistant",
        data={"message": message, "history": history, "code": code, "csrf_token": token},
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    history = html.unescape(re.search(r'name="history" value="([^"]*)"', text).group(1))
    return text, history


def test_trader_gets_refused_code_then_valid_code_to_insert(ai_client, chat_server):
    token = csrf_token_from(ai_client.get("/strategies/new").get_data(as_text=True))
    response = ai_client.post("/strategies/new", data={"name": "AI made", "template": "", "csrf_token": token})
    strategy_id = int(response.headers["Location"].rsplit("/", 1)[1])
    editor = ai_client.get(f"/strategies/{strategy_id}").get_data(as_text=True)
    assert "not configured" not in editor and 'class="chat-form"' in editor
    blank = html.unescape(re.search(r'id="code"[^>]*>(.*?)</textarea>', editor, re.S).group(1))

    first, history = _ask(ai_client, strategy_id, token, "Write a Bollinger breakout", "[]", blank)
    assert "refused" in first and "&#39;os&#39;" in first and "insert-code" not in first
    assert [m["role"] for m in json.loads(history)] == ["user", "assistant"]

    second, history = _ask(ai_client, strategy_id, token, "Do not import os", history, blank)
    assert "validated" in second and "insert-code" in second and "class AiBreakout" in second
    proposed = html.unescape(re.search(r'class="proposed-code">(.*?)</textarea>', second, re.S).group(1))
    assert proposed == VALID_CODE
    assert API_KEY not in first + second

    sent = chat_server.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == f"Bearer {API_KEY}"
    assert sent["body"]["model"] == "local-coder"
    roles = [m["role"] for m in sent["body"]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    system = sent["body"]["messages"][0]["content"]
    assert "should_long" in system and "Imports only from" in system and "class MyStrategy" in system  # current code

    # Inserting is the browser's job; saving what was inserted stores a valid version.
    saved = ai_client.post(
        f"/strategies/{strategy_id}/save", data={"code": proposed, "csrf_token": token, "note": "from the AI assistant"}
    )
    assert saved.status_code == 302
    editor = ai_client.get(f"/strategies/{strategy_id}").get_data(as_text=True)
    assert "v2 valid" in editor and "from the AI assistant" in editor


def test_unreachable_endpoint_gives_a_clear_error_and_keeps_the_message(ai_client, chat_server):
    chat_server.close()
    token = csrf_token_from(ai_client.get("/strategies/new").get_data(as_text=True))
    response = ai_client.post("/strategies/new", data={"name": "AI down", "template": "", "csrf_token": token})
    strategy_id = int(response.headers["Location"].rsplit("/", 1)[1])
    text, history = _ask(ai_client, strategy_id, token, "Write an RSI strategy", "[]", "")
    assert "cannot reach the AI assistant" in text and "Write an RSI strategy</textarea>" in text
    assert json.loads(history) == []
