"""OpenAPI helpers: every documented error code appears in the schema."""

from collections import defaultdict

from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from .serializers import ErrorSerializer

UNAUTHORIZED = (401, "unauthorized", "The API key is missing, unknown or revoked.")
VALIDATION_FAILED = (422, "validation_failed", "A field is missing or invalid; `details` maps each field to messages.")
MALFORMED_JSON = (400, "malformed_json", "The body is not valid JSON.")


def error_responses(*entries: tuple[int, str, str], auth: bool = True) -> dict[int, OpenApiResponse]:
    """`{status: OpenApiResponse}` for (status, code, when) entries, 401 included by default."""
    grouped: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for status_code, code, when in ((UNAUTHORIZED,) if auth else ()) + entries:
        grouped[status_code].append((code, when))
    responses = {}
    for status_code, codes in grouped.items():
        description = "; ".join(f"`{code}`: {when}" for code, when in codes)
        examples = [
            OpenApiExample(
                code, value={"error": {"code": code, "message": when, "details": {}}}, status_codes=[status_code]
            )
            for code, when in codes
        ]
        responses[status_code] = OpenApiResponse(ErrorSerializer, description=description, examples=examples)
    return responses
