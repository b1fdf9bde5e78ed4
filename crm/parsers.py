"""The API's request parser."""

import codecs
import json
from typing import Any

import orjson
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json as strict_json

from crm import fastjson

# The largest JSON body any endpoint accepts; real requests are a few kilobytes.
MAX_JSON_BODY = 256 * 1024


def _is_text(value) -> bool:
    """False when a JSON escape produced a lone surrogate, which no database or encoder accepts."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name == "utf-8"
    except LookupError:
        return False


def json_quick(raw: bytes) -> Any:
    """The body decoded by orjson, or ValueError when only the careful path can decide (or word the refusal).

    orjson refuses what the careful path refuses (NaN, lone surrogates, deep nesting) at a
    tenth of its cost; a body over the cap, or one that may hold an integer orjson would
    round, is left to the careful path too. Shared by the parser and the lookup's lean lane.
    """
    if len(raw) > MAX_JSON_BODY or not fastjson.exact_in_orjson(raw):
        raise ValueError("not for the quick path")
    return orjson.loads(raw)  # orjson.JSONDecodeError is a ValueError


class BoundedJSONParser(parsers.JSONParser):
    """DRF's JSON parser with a size cap; deep nesting and invalid Unicode are a 400, not a crash."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_JSON_BODY + 1) if stream is not None else b""
        if len(raw) > MAX_JSON_BODY:
            raise ParseError(f"JSON parse error - the body is larger than {MAX_JSON_BODY} bytes.")
        if is_utf8(parsers.get_encoding(parser_context or {})):
            try:
                return json_quick(raw)
            except ValueError:
                pass  # the careful path below decides, and words the refusal
        try:
            data = strict_json.loads(codecs.decode(raw, parsers.get_encoding(parser_context or {})))
        except (ValueError, RecursionError) as exc:
            raise ParseError(
                f"JSON parse error - {exc if isinstance(exc, ValueError) else 'nested too deeply'}"
            ) from None
        if not _is_text(data):
            message = "Not valid Unicode text (a lone surrogate escape)."
            bad = [key for key, value in data.items() if not _is_text([key, value])] if isinstance(data, dict) else []
            raise ParseError({name: [message] for name in bad} if bad else message)
        return data
