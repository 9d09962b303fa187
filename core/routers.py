from django.urls import re_path
from rest_framework.routers import SimpleRouter


class OptionalSlashRouter(SimpleRouter):
    """Routes that answer with and without a trailing slash (DESIGN.md)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


def action_routes(viewset, prefix: str, routes: list[tuple[str, str, str, str]]) -> list:
    """`re_path`s for (suffix, HTTP method, handler, name) under the `prefix` regex, with or without a slash."""
    return [
        re_path(rf"{prefix}/{suffix}/?$", viewset.as_view({method: handler}), name=name)
        for suffix, method, handler, name in routes
    ]
