"""JSON at orjson's speed without orjson's one loss: integers beyond 64 bits (issue 14).

orjson reads such an integer as a float (its last digits lost) and refuses to write
one; the json module keeps it exact. So a request body with a run of 19 or more digits
(such a number, or merely a long digit string) is parsed the careful way
(crm.parsers), and a value orjson will not write goes through the json module.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_DIGITS = re.compile(rb"\d{19}")


def exact_in_orjson(data: bytes | bytearray | memoryview) -> bool:
    """False when the text may hold an integer orjson would round (19 digits or more)."""
    return _LONG_DIGITS.search(data) is None


def dumps(value: Any) -> bytes:
    """UTF-8 JSON: orjson, or the json module for what orjson will not write (an integer beyond 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False).encode()
