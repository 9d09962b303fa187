"""Two enroll calls on one import at the same moment never duplicate anything."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.services import api_key_create
from contacts.importing import ImportRows
from contacts.services import contact_import_create
from enrollments.models import Enrollment, EnrollmentSkip
from tests.campaigns.factories import CampaignFactory


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_enrolls_create_no_duplicate_enrollment_or_skip(owner):
    campaign = CampaignFactory(account=owner)
    rows = ImportRows.from_records({"email": f"c{n}@example.com"} for n in range(300))
    contact_import = contact_import_create(account=owner, name="race", rows=rows)
    raw_key = api_key_create(account=owner)[1]
    barrier, answers = threading.Barrier(2), []

    def enroll():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        barrier.wait()
        try:
            response = client.post(
                f"/api/campaigns/{campaign.pk}/enroll",
                {"contact_import_id": str(contact_import.pk), "batch_size": 100},
                format="json",
            )
            answers.append(response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=enroll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a["enrolled"] for a in answers) == [0, 300]
    assert sorted(len(a["skipped"]) for a in answers) == [0, 300]
    assert Enrollment.objects.filter(campaign=campaign).count() == 300
    assert Enrollment.objects.filter(campaign=campaign).values("contact").distinct().count() == 300
    assert sorted(set(Enrollment.objects.values_list("batch_number", flat=True))) == [1, 2, 3]
    assert EnrollmentSkip.objects.filter(campaign=campaign, kind="already_enrolled").count() == 300


@pytest.mark.django_db(transaction=True)
def test_concurrent_enrolls_into_sibling_campaigns_keep_contacts_unique(owner):
    from tests.campaigns.factories import OutreachFactory

    outreach = OutreachFactory(account=owner, unique_contacts=True)
    campaigns = [CampaignFactory(account=owner, outreach=outreach) for _ in range(2)]
    rows = ImportRows.from_records({"email": f"s{n}@example.com"} for n in range(200))
    contact_import = contact_import_create(account=owner, name="race", rows=rows)
    raw_key = api_key_create(account=owner)[1]
    barrier, answers = threading.Barrier(2), []

    def enroll(campaign):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        barrier.wait()
        try:
            answers.append(
                client.post(
                    f"/api/campaigns/{campaign.pk}/enroll", {"contact_import_id": str(contact_import.pk)}, format="json"
                ).json()
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=enroll, args=(c,)) for c in campaigns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a["enrolled"] for a in answers) == [0, 200]
    assert Enrollment.objects.filter(campaign__outreach=outreach).count() == 200
    assert EnrollmentSkip.objects.filter(kind="cross_campaign_duplicate").count() == 200
