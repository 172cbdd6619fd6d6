"""Indicator results shared by the runs of a parameter grid over the same candles.

`Strategy.indicator(func, *args, **kwargs)` asks the cache of its run when it has one: a result is
reused when the same function was called before with equal inputs. Array inputs are matched by
content (a fingerprint, then an element-wise comparison), so the fresh candle Series of every run
and an indicator's output fed into another indicator are recognised; scalars by value and type.
Anything else (lists, frames, closures, bound methods) is computed as usual. Results are handed
out as copies, so a strategy that writes into one cannot change what the next run reads.
Indicator functions are taken to be pure: the same function on the same inputs gives the same values.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

MAX_CACHE_BYTES = 512 * 1024 * 1024  # beyond, new results are computed and not kept
_SCALARS = (bool, int, float, str, type(None))
_FINGERPRINT_POINTS = 16


def _cacheable_function(func: Any) -> bool:
    if isinstance(func, (types.BuiltinFunctionType, np.ufunc)):
        return True
    return isinstance(func, types.FunctionType) and func.__closure__ is None


def _fingerprint(values: np.ndarray) -> tuple:
    picks = np.linspace(0, max(len(values) - 1, 0), _FINGERPRINT_POINTS).astype("int64")
    return (values.dtype.str, values.shape, values[picks].tobytes() if len(values) else b"")


class IndicatorCache:
    """One per grid worker: the arrays it has seen (by content) and the results it computed."""

    def __init__(self, max_bytes: int = MAX_CACHE_BYTES):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._arrays: dict[tuple, list[tuple[int, np.ndarray]]] = {}  # fingerprint -> [(token, copy)]
        self._results: dict[tuple, np.ndarray] = {}
        self._next_token = 0

    def _token(self, value: Any) -> int | None:
        """The token of a known array bit for bit equal to `value` (a copy registered if new), else None."""
        values = np.ascontiguousarray(value.to_numpy() if isinstance(value, pd.Series) else value)
        if values.ndim != 1 or values.dtype.kind not in "biuf":
            return None
        fingerprint = _fingerprint(values)
        raw = values.view(np.uint8)
        for token, known in self._arrays.get(fingerprint, []):
            if np.array_equal(known.view(np.uint8), raw):
                return token
        if self.bytes + values.nbytes > self.max_bytes:
            return None
        return self._register(fingerprint, values.copy())

    def _register(self, fingerprint: tuple, kept: np.ndarray) -> int:
        token = self._next_token
        self._next_token += 1
        self._arrays.setdefault(fingerprint, []).append((token, kept))
        self.bytes += kept.nbytes
        return token

    def _key_part(self, value: Any) -> tuple | None:
        if isinstance(value, _SCALARS):
            return ("scalar", type(value).__name__, repr(value))
        if isinstance(value, (np.ndarray, pd.Series)):
            token = self._token(value)
            return None if token is None else ("array", token)
        return None

    def _key(self, func: Callable, args: tuple, kwargs: dict) -> tuple | None:
        if not _cacheable_function(func):
            return None
        parts = []
        for value in (*args, *(kwargs[k] for k in sorted(kwargs))):
            part = self._key_part(value)
            if part is None:
                return None
            parts.append(part)
        return (func, tuple(parts), tuple(sorted(kwargs)))

    def compute(self, func: Callable, args: tuple, kwargs: dict, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """`compute()` (the indicator as written), or a copy of an equal call's result."""
        key = self._key(func, args, kwargs)
        if key is not None and key in self._results:
            self.hits += 1
            return self._results[key].copy()
        self.misses += 1
        values = compute()
        if key is not None and self.bytes + values.nbytes <= self.max_bytes:
            kept = np.ascontiguousarray(values).copy()
            self._results[key] = kept
            if values.dtype.kind in "biuf":  # an indicator of this indicator is recognised by the same copy
                self._register(_fingerprint(kept), kept)
            else:
                self.bytes += kept.nbytes
        return values
