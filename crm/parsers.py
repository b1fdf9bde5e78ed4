"""The API's request parser."""

import codecs

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json as strict_json

# The largest JSON body any endpoint accepts; real requests are a few kilobytes.
MAX_JSON_BODY = 256 * 1024


class BoundedJSONParser(parsers.JSONParser):
    """DRF's JSON parser with a size cap, and deep nesting read as bad JSON rather than a crash."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_JSON_BODY + 1) if stream is not None else b""
        if len(raw) > MAX_JSON_BODY:
            raise ParseError(f"JSON parse error - the body is larger than {MAX_JSON_BODY} bytes.")
        try:
            return strict_json.loads(codecs.decode(raw, parsers.get_encoding(parser_context or {})))
        except (ValueError, RecursionError) as exc:
            raise ParseError(
                f"JSON parse error - {exc if isinstance(exc, ValueError) else 'nested too deeply'}"
            ) from None
