"""The enroll stays a lookup per person when the table's statistics predate the journey's enrollments.

Autovacuum analyzes a large enrollments table only after a tenth of it
changed, so a journey's first tens of thousands of enrollments are usually
unknown to the planner. The enroll once looked each person up through a
campaign index the statistics called "one row", reading every enrollment of
the journey for every person: a second enroll of 40,000 people took minutes.
"""

import pytest
from django.db import connection

from tests.campaigns.factories import CampaignFactory
from tests.journeys.test_compat_enroll import _journey

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
PEOPLE = 8000


def test_enrolling_a_list_again_stays_fast_when_statistics_predate_the_journeys_enrollments(api, owner):
    journey = _journey(owner)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO contacts_contact (id, account_id, email, first_name, last_name, company, custom_fields, "
            "subscribed, created_at, updated_at) "
            "SELECT gen_random_uuid(), %s, 'p' || n || '@stats.example.com', '', '', '', '{}', true, now(), now() "
            "FROM generate_series(1, %s) n",
            [owner.pk, PEOPLE],
        )
        cursor.execute(
            "INSERT INTO contacts_contactlist (id, account_id, name, email_address, created_at, updated_at) "
            "VALUES (gen_random_uuid(), %s, 'Everyone', 'everyone@lists.example.com', now(), now())",
            [owner.pk],
        )
        cursor.execute(
            "INSERT INTO contacts_contactlistmember (contact_list_id, contact_id, created_at) "
            "SELECT l.id, c.id, now() FROM contacts_contactlist l "
            "JOIN contacts_contact c ON c.account_id = l.account_id WHERE l.account_id = %s",
            [owner.pk],
        )
        # Other campaigns' enrollments are what the statistics know of.
        for campaign in [CampaignFactory(account=owner) for _ in range(4)]:
            cursor.execute(
                "INSERT INTO enrollments_enrollment (uuid, campaign_id, contact_id, status, batch_number, "
                "created_at, updated_at) SELECT gen_random_uuid(), %s, c.id, 'pending', 1, now(), now() "
                "FROM contacts_contact c WHERE c.account_id = %s",
                [campaign.pk, owner.pk],
            )
        cursor.execute("ANALYZE contacts_contact")
        cursor.execute("ANALYZE contacts_contactlistmember")
        cursor.execute("ANALYZE enrollments_enrollment")  # before any enrollment of the journey
    body = {"list_email_addresses": ["everyone@lists.example.com"]}
    first = api.post(f"/api/v1/journeys/{journey.pk}/enroll", body, format="json")
    assert first.status_code == 200 and first.json()["enrolled_count"] == PEOPLE

    with connection.cursor() as cursor:
        # The lookup per person takes well under a second; reading every enrollment per person, minutes.
        cursor.execute("SET LOCAL statement_timeout = '2s'")
    again = api.post(f"/api/v1/journeys/{journey.pk}/enroll", body, format="json")

    assert again.status_code == 200, again.content
    assert again.json()["enrolled_count"] == 0
    assert len(again.json()["not_enrolled"]["already_enrolled"]) == PEOPLE
