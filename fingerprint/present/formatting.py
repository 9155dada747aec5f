"""Numbers in words a reader takes in at a glance: sizes, counts, values that may be undefined."""

from __future__ import annotations

import math

_BYTE_UNITS = ("B", "KB", "MB", "GB", "TB")


def human_bytes(n: float | None) -> str:
    """A size in decimal units, as the Hub shows them: ``512 B``, ``3.7 MB``; '' for None."""
    if n is None:
        return ""
    size = float(n)
    for unit in _BYTE_UNITS:
        if abs(size) < 1000 or unit == _BYTE_UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def human_count(n: int) -> str:
    """A count in the Hub's short style: ``999``, ``1.2k``, ``15k``, ``3.4M``, ``2B``."""
    if n < 1000:
        return str(n)
    exp = min(int(math.log10(n)) // 3, 3)
    value = n / 1000**exp
    text = f"{value:.1f}".rstrip("0").rstrip(".") if value < 100 else f"{value:.0f}"
    return text + "kMB"[exp - 1]


def number_or_na(v: float | None, digits: int = 3) -> str:
    """A value with ``digits`` decimals, or 'n/a' when it is undefined (None, NaN)."""
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def ordinal(n: float) -> str:
    """A rank in words: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 81st, 100th (rounded to a whole number)."""
    k = round(n)
    suffix = "th" if k % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"
