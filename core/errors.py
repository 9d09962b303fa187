"""The API's one error shape: `{"error": {"code", "message", "details"}}`.

Services raise `ApplicationError` (or a subclass); `api_exception_handler`
turns it, DRF's own exceptions, Django's `ValidationError`, `Http404` and
`PermissionDenied` into that envelope with the documented status and code.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler


class ApplicationError(Exception):
    """A refusal the API reports to the caller with a stable error code."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "application_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.details = details or {}


class NotFoundError(ApplicationError):
    """An unknown id, a malformed id, or another account's object: all the same 404."""

    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class ValidationFailed(ApplicationError):
    """Input that breaks a rule; `details` maps each field to its messages."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "validation_failed"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(code: str, message: str, status_code: int, details: dict | None = None) -> JsonResponse:
    """The envelope outside DRF (middleware, plain Django views)."""
    return JsonResponse(error_body(code, message, details), status=status_code)


def _flatten(detail: Any) -> Any:
    """DRF ErrorDetail trees to plain lists/dicts of strings."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def _validation_details(detail: Any) -> dict[str, Any]:
    flat = _flatten(detail)
    if isinstance(flat, dict):
        return flat
    return {"non_field_errors": flat if isinstance(flat, list) else [flat]}


def _summary(details: dict[str, Any]) -> str:
    for field, messages in details.items():
        first = messages[0] if isinstance(messages, list) and messages else messages
        if isinstance(first, dict):
            return f"Invalid input in {field}."
        prefix = "" if field == "non_field_errors" else f"{field}: "
        return f"{prefix}{first}"
    return "Invalid input."


_DRF_CODES: dict[type, tuple[str, int]] = {
    drf_exceptions.ParseError: ("malformed_json", 400),
    drf_exceptions.NotAuthenticated: ("unauthorized", 401),
    drf_exceptions.AuthenticationFailed: ("unauthorized", 401),
    drf_exceptions.PermissionDenied: ("forbidden", 403),
    drf_exceptions.NotFound: ("not_found", 404),
    drf_exceptions.MethodNotAllowed: ("method_not_allowed", 405),
    drf_exceptions.NotAcceptable: ("not_acceptable", 406),
    drf_exceptions.UnsupportedMediaType: ("unsupported_media_type", 415),
    drf_exceptions.Throttled: ("rate_limited", 429),
}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error of the native API in one envelope."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body("validation_failed", _summary(details), details), status=422)
    if isinstance(exc, drf_exceptions.ValidationError):
        details = _validation_details(exc.detail)
        return Response(error_body("validation_failed", _summary(details), details), status=422)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, PermissionDenied):
        return Response(error_body("forbidden", "You do not have permission to do this."), status=403)

    response = drf_default_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    code, status_code = "error", response.status_code
    for exc_class, (mapped_code, mapped_status) in _DRF_CODES.items():
        if isinstance(exc, exc_class):
            code, status_code = mapped_code, mapped_status
            break
    message = str(getattr(exc, "detail", exc))
    if isinstance(exc, drf_exceptions.ParseError):
        message = f"The request body could not be parsed: {message}"
    response.data = error_body(code, message)
    response.status_code = status_code
    return response
