from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.renderers import JSONRenderer

from .errors import NotFoundError


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@authentication_classes([])
@permission_classes([])
def api_not_found(request, *args, **kwargs):
    """Unknown routes under /api/ answer the JSON envelope, never an HTML page."""
    raise NotFoundError(f"No API route matches {request.path}.", code="not_found")


class DocsView(SpectacularSwaggerView):
    """The docs page (HTML); OPTIONS answers DRF's metadata as JSON, as every other API route does.

    The page's only renderer is an HTML template, which has nothing to render
    OPTIONS' metadata with (a 500).
    """

    def get_renderers(self):
        if self.request is not None and self.request.method == "OPTIONS":
            return [JSONRenderer()]
        return super().get_renderers()
