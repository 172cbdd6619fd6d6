"""What a venue says reaches pages and the database as one bounded line of printable text."""

from core.exchanges.errors import ExchangeError, InvalidOrder
from core.outbound import MAX_REPLY_TEXT, reply_text


def test_controls_and_direction_overrides_are_removed_and_whitespace_collapsed():
    assert reply_text("bad\x00\x1b[31m order\r\n\tnow\u202eevil\u200b!") == "bad [31m order now evil !"


def test_long_bodies_are_cut_with_an_ellipsis():
    text = reply_text("<html>" + "x" * 10_000)
    assert len(text) == MAX_REPLY_TEXT and text.endswith("…") and text.startswith("<html>")


def test_every_exchange_error_keeps_only_the_fitted_text():
    err = InvalidOrder("Filter failure\n" + "y" * 1000, venue="binance", code="-1013\x07" + "z" * 100)
    assert err.message == str(err.args[0]) and len(err.message) == MAX_REPLY_TEXT and "\n" not in err.message
    assert len(err.code) == 40 and "\x07" not in err.code
    assert str(ExchangeError("short", venue="kraken", code=5)) == "kraken: short (code 5)"
