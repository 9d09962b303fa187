"""OPTIONS answers DRF's metadata on every route of the API, never a 5xx."""

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.campaigns.factories import CampaignFactory

pytestmark = pytest.mark.django_db

WORKFLOW_ACTIONS = [
    "dispatch",
    "enroll",
    "enroll_contact",
    "pause",
    "resume",
    "test_send",
    "unknown_sends/release",
]


def _api_routes(patterns=None, prefix=""):
    """Every URL pattern under /api/ as a regex-ish string (Django's `path` and `re_path` alike)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        text = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_routes(pattern.url_patterns, text)
        elif isinstance(pattern, URLPattern) and text.startswith("api/"):
            yield text


def _concrete(route: str, ids: dict[str, str]) -> str:
    """A URL for `route`: each named group or converter filled with an id (`ids` by name, else a new UUID)."""

    def fill(match):
        return ids.get(match.group("name"), str(uuid.uuid4()))

    url = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", fill, route)
    url = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", fill, url)
    url = url.replace("^", "").replace("$", "").replace("/?", "").replace("\\.", ".")
    return "/" + url


def test_the_walk_finds_the_workflow_actions():
    routes = list(_api_routes())
    urls = {_concrete(route, {"campaign_id": "C"}) for route in routes}
    assert {f"/api/campaigns/C/{action}" for action in WORKFLOW_ACTIONS} <= urls
    assert len(routes) > 30


def test_options_on_every_route_of_the_api_answers_without_a_server_error(api, owner):
    campaign = CampaignFactory(account=owner)
    ids = {"campaign_id": str(campaign.pk), "pk": str(campaign.pk)}
    failures = []
    for route in _api_routes():
        url = _concrete(route, ids)
        response = api.options(url)
        if response.status_code >= 500:
            failures.append((url, response.status_code))
    assert failures == []


@pytest.mark.parametrize("action", WORKFLOW_ACTIONS)
def test_options_on_a_workflow_action_answers_drfs_metadata(api, owner, action):
    campaign = CampaignFactory(account=owner)
    response = api.options(f"/api/campaigns/{campaign.pk}/{action}")
    assert response.status_code == 200
    body = response.json()
    assert {"name", "description", "renders", "parses"} <= set(body)
    assert "POST" in response["Allow"]


def test_options_still_describes_the_body_of_a_view_with_a_serializer(api):
    response = api.options("/api/campaigns")
    assert response.status_code == 200
    assert "actions" in response.json()
