"""The API's JSON parser: DRF's, refusing NUL characters.

PostgreSQL stores no NUL (`\\u0000`) in text or jsonb; a body carrying one in a
free-form value (custom fields, imported contacts) would fail at the database
with a 500. DRF's CharField already refuses NUL; this covers every other value.
"""

import io

from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser


def contains_nul(value) -> bool:
    """Whether a parsed JSON value holds a NUL character anywhere (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(v) for v in value)
    return False


class NulRefusingJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        data = super().parse(io.BytesIO(raw), media_type, parser_context)
        # JSON can carry a NUL only escaped, so most bodies skip the walk
        if b"\\u0000" in raw and contains_nul(data):
            # DRF's ValidationError (not ours: core.errors imports DRF, which imports this module)
            raise ValidationError({"non_field_errors": ["NUL characters (\\u0000) are not allowed."]})
        return data
