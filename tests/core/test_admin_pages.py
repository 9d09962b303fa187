"""Every admin page an operator can reach renders: each model's list, add (where allowed) and change page."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from tests.campaigns.factories import CampaignFactory, EnrollmentFactory, SequenceStepFactory, SmtpCredentialFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, owner):
    campaign = CampaignFactory(account=owner)
    SequenceStepFactory(campaign=campaign, position=1)
    SmtpCredentialFactory(campaign=campaign)
    EnrollmentFactory(campaign=campaign, status="sent", sent_at=timezone.now())
    client.force_login(get_user_model().objects.create_superuser("op", "op@example.com", "pw-for-tests-only"))
    return client


def test_every_admin_list_add_and_change_page_renders(staff_client):
    checked = 0
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert staff_client.get(changelist).status_code == 200, changelist
        checked += 1
        add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        assert staff_client.get(add).status_code in (200, 403), add  # 403: adding is refused on purpose
        obj = model._default_manager.first()
        if obj is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            assert staff_client.get(change).status_code == 200, change
    assert checked >= 15
