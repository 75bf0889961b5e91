"""The one rule for JSON that HITL Desk accepts from outside: what the database can store and every reader can walk.

Two limits, both checked at the edge so that nothing is parsed, stored or half-written before they hold:

- **Nesting:** at most `settings.HITL_MAX_JSON_DEPTH` levels of arrays and objects (32 by default). A request body
  is measured on its raw text before it is parsed (`exceeds_depth`), so a body nested 10,000 deep never reaches the
  recursive JSON parser; a value from elsewhere (a form, a job) is measured by `storage_problem`. Every recursive
  reader of stored JSON (PII redaction, the admin) can then rely on the limit.
- **Characters:** no NUL (`\\u0000`), which PostgreSQL cannot store in text or jsonb, and no lone surrogate
  (`\\ud800`), which is not text at all and cannot be encoded as UTF-8. Both are refused in keys and values alike.

`storage_problem` names the path of the offending value (`body.lines[3]`), so the error tells the client where to
look.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

_OPENERS = frozenset(b"[{")
# Every byte but brackets and quotes, dropped by bytes.translate; then what is left of each string, a quote pair.
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'[]{}"'))
_EMPTIED_STRING = re.compile(rb'"[^"]*"')


def max_depth() -> int:
    return int(settings.HITL_MAX_JSON_DEPTH)


def exceeds_depth(raw: bytes, limit: int | None = None) -> bool:
    """Does this JSON text nest arrays and objects deeper than `limit`? A linear scan of the bytes, no parsing.

    Brackets inside strings do not count; the scan does not check that the text is valid JSON (the parser does).
    """
    limit = max_depth() if limit is None else limit
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    # Reduced in C to the brackets outside strings, so that the walk in Python sees a few bytes per case of a bulk
    # body rather than every byte of it: escaped backslashes and quotes go first (so no quote is mistaken for the
    # end of a string), then every byte but brackets and quotes, then the strings, now bare quote pairs.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _EMPTIED_STRING.sub(b"", unescaped.translate(None, _NOT_STRUCTURE))
    depth = 0
    for byte in brackets:
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def text_problem(text: str) -> str | None:
    """What keeps this text from being stored (or looked up: PostgreSQL refuses a NUL even in a query), or None."""
    if "\x00" in text:
        return "holds a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (e.g. \\ud800), which is not valid text"
    return None


def storage_problem(value: Any, *, limit: int | None = None) -> str | None:
    """What keeps this JSON value from being stored and read back, or None. Iterative: any depth is safe here."""
    limit = max_depth() if limit is None else limit
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= limit:
                return f"{path or 'the value'} is nested deeper than {limit} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    key_text = str(key)
                    problem = text_problem(key_text)
                    if problem:
                        return f"the key {key_text[:40]!r}{' in ' + path if path else ''} {problem}"
                    stack.append((child, f"{path}.{key_text}" if path else key_text, depth + 1))
            else:
                stack.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))
        elif isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"{path or 'the value'} {problem}"
    return None
