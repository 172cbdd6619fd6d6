"""AI assistant that writes or edits a strategy through any OpenAI-compatible chat endpoint.

Works with OpenAI, Ollama, LM Studio, vLLM: all speak POST /v1/chat/completions. The system prompt
carries the strategy contract and the allow-list; whatever code comes back is validated with the
same checks as a saved strategy before the trader may insert it.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import requests

from core.outbound import UnsafeUrl, check_url, guard, reply_text
from core.strategies.validation import (
    ALLOWED_MODULES,
    CONTRACT_NAMES,
    ValidationReport,
    validate_strategy_code,
)

logger = logging.getLogger(__name__)

NOT_CONFIGURED_HELP = (
    "The AI assistant is not configured. Set AI_BASE_URL and AI_MODEL in .env (and AI_API_KEY if the "
    "server needs one), then restart. Examples: Ollama AI_BASE_URL=http://127.0.0.1:11434 "
    "AI_MODEL=qwen2.5-coder; LM Studio AI_BASE_URL=http://127.0.0.1:1234; vLLM "
    "AI_BASE_URL=http://127.0.0.1:8000; OpenAI AI_BASE_URL=https://api.openai.com AI_MODEL=gpt-4o-mini. "
    "A server on this machine or your network must also be allowed in config.yaml: "
    'security.allowed_networks: ["127.0.0.1/32"] (or its network).'
)


@dataclass(frozen=True)
class SetupKey:
    """One setting of the assistant in .env, for the panel's setup guide."""

    name: str
    required: bool
    what: str
    example: str
    is_set: bool


# Ready-made (server, AI_BASE_URL, AI_MODEL) lines for the common OpenAI-compatible servers.
SERVER_EXAMPLES = (
    ("Ollama, on this machine", "http://127.0.0.1:11434", "qwen2.5-coder"),
    ("LM Studio, on this machine", "http://127.0.0.1:1234", "the name of the model loaded in LM Studio"),
    ("vLLM, on this machine", "http://127.0.0.1:8000", "the model vLLM serves"),
    ("OpenAI", "https://api.openai.com", "gpt-4o-mini"),
)


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)


class AssistantError(Exception):
    """The assistant could not answer; the message is safe to show (never holds the API key)."""


class AssistantNotConfigured(AssistantError):
    pass


class AssistantUnavailable(AssistantError):
    """Unreachable, timed out or answered with an HTTP error."""


class AssistantBadResponse(AssistantError):
    """Answered, but not with an OpenAI-style chat completion."""


@dataclass(frozen=True)
class AssistantReply:
    text: str
    code: str | None
    validation: ValidationReport | None


def system_prompt() -> str:
    from core.strategies.templates import get_template

    example = get_template("sma_cross").code
    modules = ", ".join(sorted(ALLOWED_MODULES))
    contract_names = ", ".join(sorted(CONTRACT_NAMES))
    return f"""You write trading strategies for Aristobot, a crypto trading platform.
A strategy is one Python module with exactly one class that subclasses `Strategy`.

The contract:
- `params = {{...}}`: a class-level dict literal of JSON values (numbers, strings, booleans).
- `init(self)`: compute indicators once over the whole series with
  `self.indicator(func, *args, **kwargs)`, e.g. `self.indicator(ta.trend.sma_indicator, self.data.close, window=20)`.
  Keep the results on self (`self.fast = ...`).
- Candle data: `self.data.open/high/low/close/volume/time`. After init every series (data and the
  indicators you kept) ends at the current closed candle: `x[-1]` is now, `x[-2]` the candle before.
- Decisions at each candle close: `should_long(self) -> bool`, `should_short(self) -> bool`,
  `should_exit(self) -> bool`.
- When entering: `position_size(self) -> float` (fraction of free balance in (0, 1]),
  `stop_loss(self)` and `take_profit(self)` (a positive price or None), or instead of both
  `trailing_stop(self)` (a trail in % between 0.1 and 20, or None): the stop follows the best price
  since the entry and sells once the price falls that far from it (a short: the mirror). With a trail,
  stop_loss() and take_profit() must return None (a spot venue holds one exit order on the coins).
  Or several partial targets instead of take_profit(): `take_profit_ladder(self)` returning
  `[(pct_above_entry, size_pct), ...]` (2 to 10 rungs, sizes adding up to 100, or None), with or
  without a stop_loss() (which then covers what the rungs have not sold).
- `self.params["name"]` reads a parameter; `self.position` has `.side`, `.size`, `.entry_price`,
  `.is_flat`, `.is_long`, `.is_short`.
- Helpers: `crossed_above(a, b)` and `crossed_below(a, b)`.

Hard rules (the code is refused otherwise; it runs in a sandbox):
- Imports only from: {modules}, and `from core.strategies import ...` of {contract_names}.
- No names or attributes starting with "_" (no dunders), no exec, eval, compile, open, getattr,
  setattr, globals, vars, type, print; no str.format; no file or network access; no reading or writing
  files through numpy or pandas (no read_*, to_csv, load, save).
- Module level holds only imports, the class, helper functions and constants.
- Ordinary Python otherwise: state on self (`self.streak += 1`), comprehensions, f-strings, helper
  functions and dataclasses.

Answer with a short explanation and the complete strategy in one ```python code block.

Example:
```python
{example}```
"""


def extract_code(text: str) -> str | None:
    """The strategy code block of a reply: the python block that defines a Strategy, else the last one."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text or "")]
    python_blocks = [body for lang, body in blocks if lang in ("python", "py", "python3", "")]
    for body in reversed(python_blocks):
        if "Strategy" in body and "class " in body:
            return body.strip() + "\n"
    return python_blocks[-1].strip() + "\n" if python_blocks else None


def chat_completions_url(base_url: str) -> str:
    base = base_url.strip().rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if base.endswith("/v1"):
        return base + "/chat/completions"
    return base + "/v1/chat/completions"


class AssistantClient:
    def __init__(self, base_url: str | None, api_key: str | None, model: str | None, timeout: float = 120.0):
        self.base_url = (base_url or "").strip()
        self._api_key = (api_key or "").strip()
        self.model = (model or "").strip()
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Any, timeout: float = 120.0) -> AssistantClient:
        """From core.infra.config Settings (AI_BASE_URL, AI_API_KEY, AI_MODEL in .env)."""
        secrets = settings.secrets
        return cls(secrets.AI_BASE_URL, secrets.AI_API_KEY, secrets.AI_MODEL, timeout)

    def __repr__(self) -> str:
        key = "***" if self._api_key else "none"
        return f"AssistantClient(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    def setup_keys(self) -> tuple[SetupKey, ...]:
        """What the panel explains when the assistant is not configured: each setting, and whether it is set
        (never its value)."""
        return (
            SetupKey(
                "AI_BASE_URL",
                True,
                "the address of any server speaking OpenAI's chat completions protocol; Aristobot posts to "
                "<address>/v1/chat/completions",
                "http://127.0.0.1:11434",
                bool(self.base_url),
            ),
            SetupKey("AI_MODEL", True, "the name of the model on that server", "qwen2.5-coder", bool(self.model)),
            SetupKey(
                "AI_API_KEY",
                False,
                "only when the server asks for one (OpenAI and hosted servers do; a local Ollama, LM Studio or vLLM "
                "usually does not)",
                "sk-...",
                bool(self._api_key),
            ),
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def complete(self, messages: list[dict[str, str]], *, current_code: str | None = None) -> AssistantReply:
        """Send the chat (user/assistant turns) and return the reply with its validated code."""
        if not self.configured:
            raise AssistantNotConfigured(NOT_CONFIGURED_HELP)
        prompt = system_prompt()
        if current_code:
            prompt += f"\nThe trader's current strategy code:\n```python\n{current_code}\n```\n"
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": prompt}, *_clean_messages(messages)],
            "temperature": 0.2,
            "stream": False,
        }
        text = self._post(body)
        code = extract_code(text)
        validation = validate_strategy_code(code) if code is not None else None
        return AssistantReply(text=text, code=code, validation=validation)

    def _post(self, body: dict[str, Any]) -> str:
        url = chat_completions_url(self.base_url)
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            check_url(url)
        except UnsafeUrl as exc:
            raise AssistantUnavailable(f"the AI assistant's URL is refused: {exc}") from None
        started = time.monotonic()
        try:
            with guard(requests.Session()) as http:
                response = http.post(url, json=body, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise AssistantUnavailable(f"the AI assistant at {url} did not answer within {self.timeout:g} s") from None
        except requests.TooManyRedirects:
            raise AssistantUnavailable(
                f"the AI assistant at {url} answered with a redirect, which is not followed"
            ) from None
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise AssistantUnavailable(f"cannot reach the AI assistant at {url} ({reason})") from None
        logger.info(
            "assistant.reply",
            extra={
                "model": self.model,
                "status": response.status_code,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        if response.status_code >= 400:
            detail = self._scrub(_error_detail(response))
            raise AssistantUnavailable(f"the AI assistant answered HTTP {response.status_code}: {detail}")
        try:
            payload = response.json()
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise AssistantBadResponse(
                f"the AI assistant at {url} did not answer with an OpenAI-style chat completion"
            ) from None
        if not isinstance(content, str):
            raise AssistantBadResponse("the AI assistant returned an empty message")
        return content


def _clean_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    cleaned = []
    for message in messages:
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise ValueError(f"chat messages must have role 'user' or 'assistant', not {role!r}")
        cleaned.append({"role": role, "content": str(message.get("content", ""))})
    if not cleaned or cleaned[-1]["role"] != "user":
        raise ValueError("the chat must end with a message from the user")
    return cleaned


def _error_detail(response: requests.Response) -> str:
    try:
        error = response.json().get("error")
        detail = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        detail = None
    text = str(detail) if detail else (response.text or response.reason or "")
    return reply_text(text) or "no details"
