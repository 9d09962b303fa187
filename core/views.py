from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes

from .errors import NotFoundError


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@authentication_classes([])
@permission_classes([])
def api_not_found(request, *args, **kwargs):
    """Unknown routes under /api/ answer the JSON envelope, never an HTML page."""
    raise NotFoundError(f"No API route matches {request.path}.", code="not_found")
