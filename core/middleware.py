"""Request size limits for the API (DESIGN.md: JSON 10 MB, CSV uploads 50 MB).

DRF's parsers read the body stream directly and so never trip Django's
DATA_UPLOAD_MAX_MEMORY_SIZE; this answers 413 in the envelope before any
parser or view runs.
"""

from django.conf import settings

from .errors import error_response


class ApiBodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            is_upload = request.META.get("CONTENT_TYPE", "").startswith("multipart/")
            limit = settings.API_MAX_UPLOAD_BYTES if is_upload else settings.API_MAX_JSON_BODY_BYTES
            if length > limit:
                return error_response(
                    "payload_too_large",
                    f"The request body is {length} bytes; the limit is {limit} bytes.",
                    413,
                    {"limit_bytes": limit},
                )
        return self.get_response(request)
