import pytest
from django.core.cache import cache
from django.test import override_settings

from contacts.importing import ImportRows
from contacts.services import contact_import_create
from enrollments.models import Enrollment, EnrollmentSkip
from tests.campaigns.factories import CampaignFactory, EnrollmentFactory, OutreachFactory
from tests.factories import ContactFactory
from tests.servers.dns_responder import DnsResponder

pytestmark = pytest.mark.django_db


def _import(account, emails):
    rows = ImportRows.from_records({"email": e} for e in emails)
    return contact_import_create(account=account, name="list", rows=rows)


def _enroll(api, campaign, contact_import, **extra):
    body = {"contact_import_id": str(contact_import.pk), **extra}
    return api.post(f"/api/campaigns/{campaign.pk}/enroll", body, format="json")


def test_enroll_answers_the_seeds_shape_and_numbers_batches(api, owner):
    campaign = CampaignFactory(account=owner)
    contact_import = _import(owner, [f"p{n}@example.com" for n in range(7)])
    response = _enroll(api, campaign, contact_import, batch_size=3)
    assert response.status_code == 200
    assert response.json() == {"enrolled": 7, "batches": 3, "batch_size": 3, "skipped": []}
    batches = sorted(Enrollment.objects.filter(campaign=campaign).values_list("batch_number", flat=True))
    assert batches == [1, 1, 1, 2, 2, 2, 3]
    assert set(Enrollment.objects.values_list("status", flat=True)) == {"pending"}


def test_batch_size_defaults_to_50(api, owner):
    campaign = CampaignFactory(account=owner)
    assert _enroll(api, campaign, _import(owner, ["a@example.com"])).json()["batch_size"] == 50


def test_a_second_enroll_numbers_batches_after_the_highest_and_skips_the_enrolled(api, owner):
    campaign = CampaignFactory(account=owner)
    _enroll(api, campaign, _import(owner, ["a@example.com", "b@example.com"]), batch_size=1)
    second = _import(owner, ["b@example.com", "c@example.com"])
    body = _enroll(api, campaign, second, batch_size=10).json()
    assert (body["enrolled"], body["batches"]) == (1, 1)
    assert Enrollment.objects.get(contact__email="c@example.com").batch_number == 3
    (skip,) = body["skipped"]
    assert skip["email"] == "b@example.com"
    assert skip["reason"] == "Already enrolled in this campaign"
    assert EnrollmentSkip.objects.get(campaign=campaign).kind == "already_enrolled"


def test_unsubscribed_contacts_of_the_import_are_left_out(api, owner):
    campaign = CampaignFactory(account=owner)
    contact_import = _import(owner, ["in@example.com", "out@example.com"])
    contact_import.contacts.filter(email="out@example.com").update(subscribed=False)
    body = _enroll(api, campaign, contact_import).json()
    assert body["enrolled"] == 1
    assert not Enrollment.objects.filter(contact__email="out@example.com").exists()


def test_unique_contacts_outreach_skips_contacts_of_sibling_campaigns(api, owner):
    outreach = OutreachFactory(account=owner, unique_contacts=True)
    sibling = CampaignFactory(account=owner, outreach=outreach)
    campaign = CampaignFactory(account=owner, outreach=outreach)
    contact_import = _import(owner, ["shared@example.com", "fresh@example.com"])
    EnrollmentFactory(campaign=sibling, contact=contact_import.contacts.get(email="shared@example.com"))
    body = _enroll(api, campaign, contact_import).json()
    assert body["enrolled"] == 1
    assert body["skipped"] == [
        {
            "contact_id": str(contact_import.contacts.get(email="shared@example.com").pk),
            "email": "shared@example.com",
            "reason": "Already enrolled in another campaign in this outreach",
        }
    ]
    assert EnrollmentSkip.objects.get(campaign=campaign).kind == "cross_campaign_duplicate"


def test_without_unique_contacts_siblings_may_share_contacts(api, owner):
    outreach = OutreachFactory(account=owner, unique_contacts=False)
    sibling = CampaignFactory(account=owner, outreach=outreach)
    campaign = CampaignFactory(account=owner, outreach=outreach)
    contact_import = _import(owner, ["shared@example.com"])
    EnrollmentFactory(campaign=sibling, contact=contact_import.contacts.get())
    assert _enroll(api, campaign, contact_import).json()["enrolled"] == 1


def test_mx_check_skips_domains_that_provably_take_no_mail(api, owner):
    rules = {"good.example.com": "mx", "gone.example.com": "nxdomain", "slow.example.com": "drop"}
    campaign = CampaignFactory(account=owner, verify_email_mx=True)
    contact_import = _import(owner, ["a@good.example.com", "b@gone.example.com", "c@slow.example.com"])
    cache.clear()
    with (
        DnsResponder(lambda d: rules.get(d, "nxdomain")) as dns_server,
        override_settings(DNS_NAMESERVERS=[dns_server.nameserver]),
    ):
        body = _enroll(api, campaign, contact_import).json()
    assert body["enrolled"] == 2  # a timeout is not proof: enrolled, checked again at dispatch
    (skip,) = body["skipped"]
    assert skip["email"] == "b@gone.example.com"
    assert skip["reason"].startswith("No MX record for gone.example.com")
    assert EnrollmentSkip.objects.get(campaign=campaign).kind == "mx_invalid"


def test_mx_check_is_off_unless_the_campaign_asks(api, owner):
    campaign = CampaignFactory(account=owner, verify_email_mx=False)
    with override_settings(DNS_NAMESERVERS=["127.0.0.1:9"]):  # nothing listens: would time out
        body = _enroll(api, campaign, _import(owner, ["a@gone.example.com"])).json()
    assert body["enrolled"] == 1


def test_enrolling_the_same_import_again_records_each_skip_once(api, owner):
    campaign = CampaignFactory(account=owner)
    contact_import = _import(owner, ["a@example.com"])
    _enroll(api, campaign, contact_import)
    _enroll(api, campaign, contact_import)
    third = _enroll(api, campaign, contact_import).json()
    assert third["enrolled"] == 0
    assert len(third["skipped"]) == 1
    assert EnrollmentSkip.objects.filter(campaign=campaign).count() == 1


@pytest.mark.parametrize("batch_size", [0, 10_001, "many"])
def test_batch_size_out_of_range_is_422_and_nothing_is_enrolled(api, owner, batch_size):
    campaign = CampaignFactory(account=owner)
    response = _enroll(api, campaign, _import(owner, ["a@example.com"]), batch_size=batch_size)
    assert response.status_code == 422
    assert "batch_size" in response.json()["error"]["details"]
    assert not Enrollment.objects.exists()


def test_unknown_or_foreign_import_is_404_contact_import_not_found(api, owner, outsider):
    campaign = CampaignFactory(account=owner)
    foreign = _import(outsider, ["a@example.com"])
    for import_id in (str(foreign.pk), "nope"):
        response = api.post(f"/api/campaigns/{campaign.pk}/enroll", {"contact_import_id": import_id}, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "contact_import_not_found"
    assert not Enrollment.objects.exists()


def test_another_accounts_campaign_is_404_campaign_not_found(api, outsider):
    campaign = CampaignFactory(account=outsider)
    contact_import = _import(outsider, ["a@example.com"])
    response = _enroll(api, campaign, contact_import)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "campaign_not_found"


def test_enroll_contact_answers_the_seeds_shape(api, owner):
    campaign = CampaignFactory(account=owner)
    contact = ContactFactory(account=owner)
    response = api.post(
        f"/api/campaigns/{campaign.pk}/enroll_contact",
        {"contact_id": str(contact.pk), "batch_number": 4},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["contact_id"], body["batch_number"], body["status"]) == (str(contact.pk), 4, "pending")
    assert Enrollment.objects.get(uuid=body["id"]).contact == contact


def test_enroll_contact_defaults_to_batch_0_and_priority_goes_first(api, owner):
    campaign = CampaignFactory(account=owner)
    first, urgent = ContactFactory(account=owner), ContactFactory(account=owner)
    api.post(f"/api/campaigns/{campaign.pk}/enroll_contact", {"contact_id": str(first.pk)}, format="json")
    body = api.post(
        f"/api/campaigns/{campaign.pk}/enroll_contact", {"contact_id": str(urgent.pk), "priority": True}, format="json"
    ).json()
    assert body["batch_number"] == 0
    assert body["created_at"].startswith("2000-01-01T00:00:00")
    listed = api.get(f"/api/campaigns/{campaign.pk}/enrollments?batch_number=0").json()
    assert [e["contact_id"] for e in listed] == [str(urgent.pk), str(first.pk)]


def test_enroll_contact_refuses_an_enrolled_contact(api, owner):
    campaign = CampaignFactory(account=owner)
    contact = ContactFactory(account=owner)
    EnrollmentFactory(campaign=campaign, contact=contact)
    response = api.post(f"/api/campaigns/{campaign.pk}/enroll_contact", {"contact_id": str(contact.pk)}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "contact_already_enrolled"


def test_enroll_contact_refuses_an_unsubscribed_contact(api, owner):
    campaign = CampaignFactory(account=owner)
    contact = ContactFactory(account=owner, subscribed=False)
    response = api.post(f"/api/campaigns/{campaign.pk}/enroll_contact", {"contact_id": str(contact.pk)}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "contact_unsubscribed"
    assert not Enrollment.objects.exists()


def test_enroll_contact_with_a_foreign_contact_is_404_contact_not_found(api, owner, outsider):
    campaign = CampaignFactory(account=owner)
    theirs = ContactFactory(account=outsider)
    response = api.post(f"/api/campaigns/{campaign.pk}/enroll_contact", {"contact_id": str(theirs.pk)}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "contact_not_found"


def test_enroll_contact_refuses_a_contact_of_a_sibling_campaign_when_contacts_are_unique(api, owner):
    outreach = OutreachFactory(account=owner, unique_contacts=True)
    sibling = CampaignFactory(account=owner, outreach=outreach)
    campaign = CampaignFactory(account=owner, outreach=outreach)
    contact = ContactFactory(account=owner)
    EnrollmentFactory(campaign=sibling, contact=contact)
    response = api.post(f"/api/campaigns/{campaign.pk}/enroll_contact", {"contact_id": str(contact.pk)}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "contact_in_sibling_campaign"
    assert not Enrollment.objects.filter(campaign=campaign).exists()


def test_enroll_contact_refuses_a_contact_whose_only_enrollment_is_a_later_round(api, owner):
    """A /v1 re-enroll (round 2) may outlive a deleted round 1: the contact is still in the campaign."""
    campaign = CampaignFactory(account=owner)
    contact = ContactFactory(account=owner)
    EnrollmentFactory(campaign=campaign, contact=contact, round=2)
    response = api.post(f"/api/campaigns/{campaign.pk}/enroll_contact", {"contact_id": str(contact.pk)}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "contact_already_enrolled"
    assert Enrollment.objects.filter(campaign=campaign, contact=contact).count() == 1
