"""How large and how deep a JSON text may be, wherever one arrives (an HTTP body, a Kafka message).

Checked without parsing: a linear scan over the bytes finds the nesting depth, so a hostile text never makes a
parser recurse.
"""

from __future__ import annotations

import re
from itertools import accumulate

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32

# a JSON string with its escapes (or the unterminated rest of one): brackets inside it do not nest.
# Possessive quantifiers keep the match linear whatever the input.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether the JSON text nests arrays and objects deeper than `limit`, without parsing it.

    For any text a JSON parser accepts, the running count of open brackets outside strings is its depth;
    for text it refuses, the parser stops where that count first goes wrong, so it never recurses deeper.
    """
    if body.count(b"[") + body.count(b"{") <= limit:  # most texts: too few openings to nest that deep at all
        return False
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    return max(accumulate(map(_STEP.__getitem__, brackets))) > limit


# the escape of U+0000 (after an even number of backslashes, which are escaped backslashes themselves)
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*+\\u0000")


def holds_nul(body: bytes) -> bool:
    """Whether the JSON text holds the character U+0000, which PostgreSQL stores in no text and no jsonb."""
    return b"\\u0000" in body and _NUL_ESCAPE.search(body) is not None


def utf8_problem(body: bytes) -> str | None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"body is not valid UTF-8 (byte 0x{body[exc.start]:02X} at offset {exc.start})"
    return None
