import pytest

from campaigns.models import Campaign, Outreach

from .factories import CampaignFactory, OutreachFactory

pytestmark = pytest.mark.django_db


def test_create_list_show_and_update_an_outreach(api):
    response = api.post("/api/outreaches", {"name": "Spring", "unique_contacts": True}, format="json")
    assert response.status_code == 201
    outreach = response.json()
    assert (outreach["name"], outreach["unique_contacts"]) == ("Spring", True)

    assert [o["id"] for o in api.get("/api/outreaches").json()] == [outreach["id"]]
    assert api.get(f"/api/outreaches/{outreach['id']}").json()["name"] == "Spring"

    response = api.patch(f"/api/outreaches/{outreach['id']}", {"unique_contacts": False}, format="json")
    assert response.status_code == 200
    assert response.json()["unique_contacts"] is False
    assert response.json()["name"] == "Spring"


def test_unique_contacts_defaults_to_false(api):
    assert api.post("/api/outreaches", {"name": "Plain"}, format="json").json()["unique_contacts"] is False


def test_name_is_required_and_unknown_fields_are_refused(api):
    response = api.post("/api/outreaches", {}, format="json")
    assert response.status_code == 422
    assert "name" in response.json()["error"]["details"]
    response = api.post("/api/outreaches", {"name": "x", "colour": "red"}, format="json")
    assert "colour" in response.json()["error"]["details"]
    assert not Outreach.objects.exists()


def test_deleting_an_outreach_leaves_its_campaigns_unlinked(api, owner):
    outreach = OutreachFactory(account=owner)
    campaign = CampaignFactory(account=owner, outreach=outreach)
    assert api.delete(f"/api/outreaches/{outreach.pk}").status_code == 204
    assert not Outreach.objects.filter(pk=outreach.pk).exists()
    assert Campaign.objects.get(pk=campaign.pk).outreach_id is None


def test_another_accounts_outreach_is_outreach_not_found(outsider_api, owner):
    outreach = OutreachFactory(account=owner)
    for response in (
        outsider_api.get(f"/api/outreaches/{outreach.pk}"),
        outsider_api.patch(f"/api/outreaches/{outreach.pk}", {"name": "x"}, format="json"),
        outsider_api.delete(f"/api/outreaches/{outreach.pk}"),
        outsider_api.get("/api/outreaches/not-a-uuid"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "outreach_not_found"
    assert outsider_api.get("/api/outreaches").json() == []
    assert Outreach.objects.get(pk=outreach.pk).name == outreach.name
