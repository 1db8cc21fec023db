"""Argument checks and the progress display shared by tessera's functions."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional, Union

import numpy as np


def as_array(x: Any, name: str, ndim: Optional[int] = None, what: str = "") -> Optional[np.ndarray]:
    """x as a numpy array of a type the library reads, without a copy when it already is one.

    Booleans are read as uint8; half and extended precision floats are converted.
    Raises TypeError for non-numeric data, ValueError for the wrong number of
    dimensions (``what`` names the expected layout, e.g. "[n_sweep, ny, nx]").
    """
    if x is None:
        return None
    a = np.asarray(x)
    kind = a.dtype.kind
    if kind == "b":
        a = a.view(np.uint8)
    elif kind not in "iuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    elif kind == "f" and a.dtype.itemsize not in (4, 8):
        a = a.astype(np.float64)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if ndim is not None and a.ndim != ndim:
        layout = f" {what}" if what else ""
        raise ValueError(f"{name}: expected {ndim} dimensions{layout}, got shape {tuple(a.shape)}")
    return a


def named_numbers(value: Any, name: str) -> list:
    """{name: number} or ["NAME=VALUE", ...] (the command's form) as [(name, float)]."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    items = value.items() if isinstance(value, dict) else None
    if items is None:
        items = []
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise ValueError(f"{name} {item}: expected NAME=VALUE")
            key, text = item.split("=", 1)
            items.append((key, text))
    out = []
    for key, v in items:
        try:
            number = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name} {key}: '{v}' is not a number") from None
        out.append((str(key), number))
    return out


def named_texts(value: Any, name: str) -> list:
    """{name: text} or ["NAME=TEXT", ...] as [(name, text)]."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if isinstance(value, dict):
        return [(str(k), str(v)) for k, v in value.items()]
    out = []
    for item in value:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"{name} {item}: expected NAME=EXPR")
        key, text = item.split("=", 1)
        out.append((key, text))
    return out


def names(value: Any, name: str) -> list:
    """A list of names, or one comma-separated string of them."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    out = list(value)
    for v in out:
        if not isinstance(v, str):
            raise TypeError(f"{name}: expected names (strings), got {v!r}")
    return out


def integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    return int(value)


def number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    return float(value)


def text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, got {value!r}")
    return value


class Progress:
    """Counts finished items; shows a bar (tqdm when installed, else one line on
    stderr) once a call has run for a second, so short calls print nothing."""

    def __init__(self, total: int, unit: str, enabled: Union[bool, Callable[[int], Any]]):
        self.total = total
        self.unit = unit
        self.callback = enabled if callable(enabled) else None
        self.enabled = bool(enabled) and self.callback is None
        self.bar = None
        self.done = 0
        self.start = time.monotonic()
        self.last = 0.0
        if self.enabled:
            try:
                from tqdm.auto import tqdm  # optional
                self.bar = tqdm(total=total, unit=unit, delay=1.0, leave=False, dynamic_ncols=True)
            except Exception:
                self.bar = None

    def __call__(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(n)
        elif self.bar is not None:
            self.bar.update(n)
        elif self.enabled:
            now = time.monotonic()
            if now - self.start >= 1.0 and now - self.last >= 0.5:
                self.last = now
                pct = 100.0 * self.done / max(1, self.total)
                sys.stderr.write(f"\rtessera: {self.done}/{self.total} {self.unit} ({pct:.0f} %)")
                sys.stderr.flush()

    def hook(self):
        """The callable the binding calls, or None when nothing listens."""
        return self if (self.enabled or self.callback is not None) else None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.last > 0:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()
