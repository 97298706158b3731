"""Scalar conversions shared by the codecs: timestamps, blobs, XML text escaping, input type errors."""

from __future__ import annotations

import base64
import binascii
import calendar
import math
import re
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from typing import Any


class InputTypeError(Exception):
    """A wire value that cannot be read as the modelled type; each protocol renders it its own way."""

    def __init__(self, path: str, value: Any, expected: str) -> None:
        super().__init__(f"{path}: expected {expected}")
        self.path = path
        self.value = value
        self.expected = expected


_INT_RE = re.compile(r"[+-]?\d+")


def parse_int(raw: str, path: str) -> int:
    if not _INT_RE.fullmatch(raw):
        raise InputTypeError(path, raw, "an integer")
    return int(raw)


def parse_float(raw: str, path: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise InputTypeError(path, raw, "a number") from None


def parse_bool(raw: str, path: str) -> bool:
    low = raw.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    raise InputTypeError(path, raw, "a boolean (true or false)")


def parse_blob(raw: str, path: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InputTypeError(path, raw, "base64-encoded binary data") from None


def parse_timestamp(raw: str | float, path: str) -> datetime:
    """ISO 8601, epoch seconds or RFC 822, to an aware UTC datetime."""
    try:
        if isinstance(raw, int | float):
            return datetime.fromtimestamp(raw, UTC)
        text = raw.strip()
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except ValueError:
            pass
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            value = parsedate_to_datetime(text)
    except (ValueError, TypeError, OverflowError, OSError):
        raise InputTypeError(path, raw, "a timestamp") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_datetime(value: Any) -> datetime:
    """Accept what a handler may return for a timestamp: datetime (naive means UTC), epoch, or text."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int | float | str):
        return parse_timestamp(value, "")
    raise TypeError(f"not a timestamp: {value!r}")


def iso8601(value: Any) -> str:
    d = to_datetime(value).astimezone(UTC)
    base = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
    if d.microsecond:
        return f"{base}.{d.microsecond // 1000:03d}Z"
    return base + "Z"


def epoch_seconds(value: Any) -> float:
    d = to_datetime(value)
    return calendar.timegm(d.utctimetuple()) + (d.microsecond // 1000) / 1000.0


def format_timestamp(value: Any, fmt: str | None, default: str) -> str | float:
    fmt = (fmt or default).lower()
    if fmt == "iso8601":
        return iso8601(value)
    if fmt == "unixtimestamp":
        return epoch_seconds(value)
    return formatdate(int(epoch_seconds(value)), usegmt=True)


def b64(value: bytes | bytearray | memoryview | str) -> str:
    if isinstance(value, str):
        value = value.encode()
    return base64.b64encode(bytes(value)).decode("ascii")


def float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


# XML 1.0 cannot carry C0 control characters other than tab, LF and CR; those three are written as
# character references so that parsers do not normalise them, the rest become U+FFFD.
_XML_ESCAPES: dict[int, str] = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&apos;",
    ord("\t"): "&#9;",
    ord("\n"): "&#10;",
    ord("\r"): "&#13;",
}
for _c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]:
    _XML_ESCAPES[_c] = "\ufffd"
_XML_NEEDS_ESCAPE = re.compile("[&<>\"'\x00-\x1f\ufffe\uffff\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def xml_escape(text: str) -> str:
    if _XML_NEEDS_ESCAPE.search(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text.translate(_XML_ESCAPES))
