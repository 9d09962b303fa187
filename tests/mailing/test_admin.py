import pytest
from django.contrib.auth import get_user_model

from mailing.models import ScheduledSend

from .conftest import enroll_contacts, make_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("op", "op@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def test_an_operator_releases_unknown_sends_from_the_admin(api, staff_client, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 2)
    api.post(f"/api/campaigns/{campaign.pk}/dispatch", {}, format="json")
    unknown, sent = ScheduledSend.objects.order_by("send_at")
    ScheduledSend.objects.filter(pk=unknown.pk).update(status="unknown", message_id="<old@x>")
    ScheduledSend.objects.filter(pk=sent.pk).update(status="sent")

    page = staff_client.get("/admin/mailing/scheduledsend/?status__exact=unknown")
    assert page.status_code == 200 and unknown.enrollment.contact.email in page.content.decode()
    response = staff_client.post(
        "/admin/mailing/scheduledsend/",
        {"action": "release_unknown", "_selected_action": [str(unknown.pk), str(sent.pk)]},
        follow=True,
    )
    assert "Released 1 send(s); 1 were not unknown" in response.content.decode()
    unknown.refresh_from_db()
    sent.refresh_from_db()
    assert unknown.status == "scheduled" and unknown.message_id is None and sent.status == "sent"
    assert staff_client.get(f"/admin/mailing/scheduledsend/{unknown.pk}/change/").status_code == 200
