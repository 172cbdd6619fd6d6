import io
import json
import logging

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from core.infra.logs import setup_logging
from core.infra.security import (
    SecretDecryptionError,
    decrypt_secret,
    encrypt_secret,
    redact,
    register_secret,
    rotate_secret,
)


@given(st.text(min_size=1, max_size=200))
def test_encrypt_roundtrip(plain):
    token = encrypt_secret(plain)
    assert plain not in token or len(plain) < 4
    assert decrypt_secret(token) == plain


def test_key_rotation():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = encrypt_secret("api-secret-value", keys=old)
    rotated_keys = f"{new},{old}"
    assert decrypt_secret(token, keys=rotated_keys) == "api-secret-value"
    rotated = rotate_secret(token, keys=rotated_keys)
    assert decrypt_secret(rotated, keys=new) == "api-secret-value"
    with pytest.raises(SecretDecryptionError, match="cannot be decrypted"):
        decrypt_secret(token, keys=new)


@pytest.mark.parametrize(
    "line",
    [
        "signature=3f1a2b4c5d6e7f80",
        '{"api_key": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"}',
        "X-MBX-APIKEY: vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcDEF123",
        "password='hunter2hunter2'",
        "private_key 0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
        "postgresql://user:s3cretpw@db:5432/x",
        "passphrase: my-passphrase-1",
    ],
)
def test_redact_masks_secret_shapes(line):
    masked = redact(line)
    assert "***" in masked
    for secret in ("vmPUZE6mv9", "hunter2", "s3cretpw", "my-passphrase", "3f1a2b4c", "abcDEF123", "4c0883a69102937d"):
        assert secret not in masked


def test_every_logger_is_redacted_and_json():
    stream = io.StringIO()
    setup_logging("test", stream=stream)
    try:
        logging.getLogger("celery.worker").info("sending api_secret=%s", "abcdef123456")
        logging.getLogger("some.lib").warning("order", extra={"headers": {"X-MBX-APIKEY": "KEYVALUE9999"}})
        try:
            raise ValueError("token=eyJabc.def.ghi")
        except ValueError:
            logging.getLogger("x").exception("boom")
    finally:
        from tests.conftest import LOG_DIR

        setup_logging("pytest", stream=open(LOG_DIR / "pytest.log", "a"))  # noqa: SIM115
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [entry["event"] for entry in lines] == ["sending api_secret=***", "order", "boom"]
    assert all(entry["process"] == "test" and entry["time"].endswith("+00:00") for entry in lines)
    text = stream.getvalue()
    assert "abcdef123456" not in text and "KEYVALUE9999" not in text and "eyJabc.def.ghi" not in text


@pytest.mark.parametrize("where", ["{}", "x{}", "order {} placed", "a long line " * 8 + "{} at the end"])
def test_redact_masks_a_registered_secret_anywhere_in_short_and_long_texts(where):
    register_secret("Zq7RegisteredSecretValue")
    masked = redact(where.format("Zq7RegisteredSecretValue"))
    assert "Zq7Registered" not in masked and "***" in masked


def test_redact_leaves_texts_without_a_secret_as_they_are():
    for text in ("filled", "binance", "order_placed", "2026-12-08T01:50:00.123+00:00", "Zq7Regist"):
        assert redact(text) == text
