"""Secrets at rest (Fernet, rotatable) and the redaction filter installed on every logger."""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.infra.config import get_settings


class SecretDecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key (keys rotated away?)."""


def _fernet(keys: str | None = None) -> MultiFernet:
    keys = keys or get_settings().secrets.FERNET_KEYS
    # The first key encrypts; all keys decrypt, so a new key can be prepended and old data re-encrypted.
    return MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])


def encrypt_secret(plain: str, keys: str | None = None) -> str:
    return _fernet(keys).encrypt(plain.encode()).decode()


def decrypt_secret(token: str, keys: str | None = None) -> str:
    try:
        return _fernet(keys).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError("stored secret cannot be decrypted with the configured FERNET_KEYS") from None


def rotate_secret(token: str, keys: str | None = None) -> str:
    return _fernet(keys).rotate(token.encode()).decode()


def generate_fernet_key() -> str:
    return Fernet.generate_key().decode()


# --- redaction -----------------------------------------------------------------------------------

_SECRET_NAMES = (
    r"api[_-]?key|api[_-]?secret|secret|passphrase|password|passwd|private[_-]?key|signature|"
    r"x-mbx-apikey|access-key|access-sign|access-passphrase|api-sign|authorization|token|jwt|"
    r"fernet_keys|secret_key|ai_api_key|starknet_private_key|signing_key"
)
_PATTERNS = [
    # key=value, key: value, "key": "value" (JSON, query strings, headers, reprs)
    re.compile(rf"(?i)([\"']?(?:{_SECRET_NAMES})[\"']?\s*[:=]\s*[\"']?)([^\"'&\s,}}]+)"),
    re.compile(r"(?i)(bearer\s+)([A-Za-z0-9\-_\.=]+)"),
    re.compile(r"(eyJ[A-Za-z0-9_\-]+\.)([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)"),  # JWT
    re.compile(r"(0x)([0-9a-fA-F]{64})\b"),  # raw 32-byte private keys / signatures
    re.compile(r"(postgres(?:ql)?(?:\+psycopg)?://[^:/@\s]+:)([^@\s]+)(@)"),  # DSN passwords
    re.compile(r"(redis://[^:/@\s]*:)([^@\s]+)(@)"),
]
REDACTED = "***"
# What the patterns cannot match without (each needs a `:` or `=`, or starts with one of the others): a
# text with none of these is not searched pattern by pattern (most log fields: states, names, ids).
_TRIGGERS = re.compile(r"[:=]|(?i:bearer)|eyJ|0x")
_known_secrets: set[str] = set()
_HEAD = 6  # the shortest secret remembered; a text holding a secret holds its first _HEAD characters
_secret_heads: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so it is masked wherever it appears, whatever its key name."""
    if value and len(value) >= _HEAD:
        _known_secrets.add(value)
        _secret_heads.add(value[:_HEAD])


def _may_hold_secret(text: str) -> bool:
    if len(text) > 64:  # a long text (a traceback, an answer): searched for each secret
        return bool(_known_secrets)
    heads = _secret_heads
    return any(text[start : start + _HEAD] in heads for start in range(len(text) - _HEAD + 1))


def redact(text: str) -> str:
    if _may_hold_secret(text):
        for value in _known_secrets:
            if value in text:
                text = text.replace(value, REDACTED)
    if not _TRIGGERS.search(text):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED + (m.group(3) if (m.lastindex or 0) >= 3 else ""), text)
    return text


_SECRET_KEY_NAME = re.compile(rf"(?i)^(?:{_SECRET_NAMES})$|(?i:secret|password|passphrase|private)")


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    """Whether a value stored under this key is masked whole (log records reuse a few key names)."""
    return bool(_SECRET_KEY_NAME.search(key))


def redact_value(value: Any) -> Any:
    """Redact a structure: strings by pattern, and any value stored under a secret-looking key."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and _secret_key(key) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [redact_value(item) for item in value]
    return value


class RedactionFilter(logging.Filter):
    """Rewrites the final message (and exception text) of every record before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
