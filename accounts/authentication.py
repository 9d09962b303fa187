"""API key authentication: `Authorization: Bearer <key>` or `x-api-key: <key>`.

On success `request.user` is the key's Account (every queryset is scoped to
it) and `request.auth` is the ApiKey. A missing, unknown or revoked key is a
401 `unauthorized`.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .models import ApiKey
from .services import api_key_touch, hash_api_key


def _raw_key(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise AuthenticationFailed("The Authorization header must be 'Bearer <api key>'.")
    value = request.META.get("HTTP_X_API_KEY", "").strip()
    return value or None


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw_key = _raw_key(request)
        if raw_key is None:
            return None  # DRF answers NotAuthenticated -> 401
        api_key = (
            ApiKey.objects.select_related("account")
            .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True)
            .first()
        )
        if api_key is None:
            raise AuthenticationFailed("The API key is unknown or revoked.")
        api_key_touch(api_key=api_key)
        return api_key.account, api_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = ["bearerAuth", "apiKeyHeader"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <api key>"},
            {"type": "apiKey", "in": "header", "name": "x-api-key"},
        ]

    def get_security_requirement(self, auto_schema):
        # Alternatives, not a pair: a request carries the key one way or the other (OpenAPI: one object each).
        return [{name: []} for name in self.name]
