"""Every admin page an operator can reach answers as it should: each list, add page (or its refusal) and change page."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from accounts.services import api_key_create
from tests.campaigns.factories import (
    CampaignFactory,
    EnrollmentFactory,
    OutreachFactory,
    SequenceStepFactory,
    SmtpCredentialFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, owner):
    campaign = CampaignFactory(account=owner, outreach=OutreachFactory(account=owner))
    api_key_create(account=owner)
    SequenceStepFactory(campaign=campaign, position=1)
    SmtpCredentialFactory(campaign=campaign)
    EnrollmentFactory(campaign=campaign, status="sent", sent_at=timezone.now())
    client.force_login(get_user_model().objects.create_superuser("op", "op@example.com", "pw-for-tests-only"))
    return client


# What each admin's add page answers. 403: adding there is refused on purpose, because the rows are
# records of what happened, or are made through the API only (its skip rules, its URL checks, a
# secret shown once). Every registered model is listed, so a new admin has to say which it is.
ADD_PAGE = {
    "Group": 200,
    "User": 200,
    "Account": 200,
    "ApiKey": 200,
    "Contact": 200,
    "ContactImport": 200,
    "ContactList": 200,
    "Campaign": 200,
    "Outreach": 200,
    "Mailbox": 200,
    "Enrollment": 403,
    "Journey": 200,
    "JourneyEnrollment": 403,
    "EnrollmentSkip": 403,
    "ScheduledSend": 403,
    "InboundMessage": 403,
    "ProviderEvent": 403,
    "TrackingEvent": 403,
    "ImapSyncState": 403,
    "WebhookEndpoint": 403,
    "WebhookDelivery": 403,
    "WebhookEvent": 403,
}


def test_every_admin_list_add_and_change_page_renders(staff_client):
    assert sorted(model.__name__ for model in admin.site._registry) == sorted(ADD_PAGE)
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert staff_client.get(changelist).status_code == 200, changelist
        add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        assert staff_client.get(add).status_code == ADD_PAGE[model.__name__], add
        obj = model._default_manager.first()
        if obj is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            assert staff_client.get(change).status_code == 200, change
