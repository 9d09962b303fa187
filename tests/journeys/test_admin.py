"""The journey admin as an operator uses it: pages, adding through the campaign forms, turning on and off.

A journey's admin is the campaign admin for campaigns of kind journey: the
same forms and inlines, saved through `campaign_create(kind=journey)`; its
state changes only through `journey_turn_on` / `journey_turn_off`, whose
refusals are shown as messages. Journey enrollments are read-only.
"""

from __future__ import annotations

import datetime
import html as htmllib

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.utils import timezone

from campaigns.models import Campaign
from journeys.models import Journey
from journeys.services import journey_create, journey_turn_off, journey_turn_on
from tests.campaigns.factories import CampaignFactory, enroll
from tests.factories import ContactFactory
from tests.mailboxes.factories import MailboxFactory

pytestmark = pytest.mark.django_db

JOURNEYS = "/admin/journeys/journey/"
ENROLLMENTS = "/admin/journeys/journeyenrollment/"
STEP = {"position": 1, "subject": "Hi {{first_name}}", "body_html": "<p>Hello</p>", "delay_minutes": 0}
CREDENTIAL = {
    "label": "Primary",
    "smtp_host": "smtp.example.com",
    "smtp_port": 587,
    "smtp_username": "sales@example.com",
    "smtp_password": "smtp-SECRET-pw",
    "daily_limit": 200,
}


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("op", "op@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def _journey(account, name="Welcome", *, steps=(STEP,), credentials=(CREDENTIAL,)) -> Journey:
    return journey_create(account=account, name=name, steps=list(steps), smtp_credentials=list(credentials))


def _incomplete(account, name="Half done") -> Journey:
    """A draft journey without a step or a credential (the API cannot make one; an edit can)."""
    journey = _journey(account, name)
    journey.sequence_steps.all().delete()
    journey.smtp_credentials.all().delete()
    return journey


@pytest.fixture
def journey(owner):
    """A journey that is on, with one active, one completed, and two exited enrollments."""
    journey = _journey(owner)
    journey_turn_on(journey=journey)
    now = timezone.now()
    enroll(journey, "pending", contact=ContactFactory(account=owner, email="active@example.com"))
    enroll(journey, "sent", contact=ContactFactory(account=owner, email="done@example.com"), completed_at=now)
    enroll(journey, "replied", contact=ContactFactory(account=owner, email="replied@example.com"))
    enroll(
        journey,
        "sent",
        contact=ContactFactory(account=owner, email="left@example.com"),
        unsubscribed_at=now - datetime.timedelta(minutes=5),
    )
    return journey


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _action(client, action, *journeys):
    return client.post(JOURNEYS, {"action": action, "_selected_action": [str(j.pk) for j in journeys]}, follow=True)


def test_the_changelist_shows_state_and_enrollment_counts_in_a_fixed_number_of_queries(
    staff_client, owner, journey, django_assert_max_num_queries
):
    _journey(owner, "Second")
    response = staff_client.get(JOURNEYS)
    assert response.status_code == 200
    rows = {j.name: j for j in response.context["cl"].result_list}
    assert (rows["Welcome"].state, rows["Second"].state) == ("on", "draft")
    assert (rows["Welcome"].active_count, rows["Welcome"].completed_count, rows["Welcome"].exited_count) == (1, 1, 2)
    assert (rows["Second"].active_count, rows["Second"].completed_count, rows["Second"].exited_count) == (0, 0, 0)
    page = response.content.decode()
    assert "Draft" in page and "On" in page

    for n in range(5):  # more journeys with enrollments: still the same queries
        more = _journey(owner, f"More {n}")
        enroll(more, "pending")
    with django_assert_max_num_queries(12):
        assert staff_client.get(JOURNEYS).status_code == 200


def test_the_changelist_searches_by_name_and_filters_by_state_and_account(staff_client, owner, outsider, journey):
    _journey(owner, "Onboarding draft")
    _journey(outsider, "Their journey")

    def names(query):
        response = staff_client.get(JOURNEYS + query)
        assert response.status_code == 200
        return sorted(j.name for j in response.context["cl"].result_list)

    assert names("?q=onboard") == ["Onboarding draft"]
    assert names("?state=on") == ["Welcome"]
    assert names("?state=draft") == ["Onboarding draft", "Their journey"]
    assert names(f"?account__id__exact={outsider.pk}") == ["Their journey"]
    journey_turn_off(journey=journey)
    assert names("?state=off") == ["Welcome"]


def test_the_change_page_shows_steps_credentials_and_counts_never_a_secret(staff_client, journey):
    response = staff_client.get(f"{JOURNEYS}{journey.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    # The credential chooses a mailbox; its passwords are edited on the mailbox's page only.
    assert 'name="sequence_steps-0-subject"' in page and 'name="smtp_credentials-0-mailbox"' in page
    assert 'type="password"' not in page
    assert "Active: 1 · completed: 1 · exited: 2" in htmllib.unescape(page)
    assert f"{ENROLLMENTS}?journey={journey.pk}" in page
    assert "SECRET" not in page


def test_an_operator_adds_a_journey_with_a_step_and_a_credential(staff_client, owner):
    mailbox = MailboxFactory(account=owner, smtp_username="sales@example.com", smtp_password="typed-pw")
    add = f"{JOURNEYS}add/"
    page = staff_client.get(add).content.decode()
    assert 'name="sequence_steps-0-subject"' in page and 'name="outreach"' not in page
    assert 'name="smtp_credentials-0-mailbox"' in page and "typed-pw" not in page
    data = {
        "account": owner.pk,
        "name": "From the admin",
        "min_wait_seconds": 0,
        "max_wait_seconds": 60,
        "bounce_rate_threshold": 8.0,
        "_continue": "1",
        **_inline("sequence_steps", [{**STEP, "body_text": "", "delay_minutes": 60}]),
        **_inline("smtp_credentials", [{"mailbox": mailbox.pk, "label": "Primary", "campaign_daily_limit": 30}]),
    }
    response = staff_client.post(add, data)
    assert response.status_code == 302, response.context["errors"] if response.context else response

    journey = Journey.objects.get(name="From the admin")
    assert response["Location"] == f"{JOURNEYS}{journey.pk}/change/"
    assert (journey.account, journey.kind, journey.state) == (owner, Campaign.Kind.JOURNEY, "draft")
    assert [(s.position, s.delay_minutes) for s in journey.sequence_steps.all()] == [(1, 60)]
    credential = journey.smtp_credentials.get()
    assert (credential.mailbox_id, credential.label, credential.campaign_daily_limit) == (mailbox.pk, "Primary", 30)
    assert list(owner.mailboxes.all()) == [mailbox]  # used as it is, not copied
    mailbox.refresh_from_db()
    assert (mailbox.smtp_username, mailbox.smtp_password) == ("sales@example.com", "typed-pw")


def test_adding_without_a_step_shows_the_apis_message_and_writes_nothing(staff_client, owner):
    mailbox = MailboxFactory(account=owner)
    empty_step = {"position": "", "delay_minutes": 0, "subject": "", "body_html": "", "body_text": ""}
    data = {
        "account": owner.pk,
        "name": "No steps",
        "min_wait_seconds": 0,
        "max_wait_seconds": 60,
        "bounce_rate_threshold": 8.0,
        **_inline("sequence_steps", [empty_step]),
        **_inline("smtp_credentials", [{"mailbox": mailbox.pk, "label": "Primary"}]),
    }
    response = staff_client.post(f"{JOURNEYS}add/", data)
    assert response.status_code == 200
    assert "At least one sequence step is required." in response.content.decode()
    assert not Campaign.objects.exists()


def test_turn_on_and_turn_off_actions_change_the_state_through_the_services(staff_client, owner):
    journey = _journey(owner)
    response = _action(staff_client, "turn_on", journey)
    assert response.status_code == 200
    journey.refresh_from_db()
    assert journey.state == "on"
    assert _messages(response) == ["1 journey(s) turned on."]

    response = _action(staff_client, "turn_off", journey)
    journey.refresh_from_db()
    assert journey.state == "off" and _messages(response) == ["1 journey(s) turned off."]

    _action(staff_client, "turn_on", journey)
    journey.refresh_from_db()
    assert journey.state == "on"


def test_turning_on_an_incomplete_journey_shows_the_reason_and_changes_nothing(staff_client, owner):
    ready, incomplete = _journey(owner, "Ready"), _incomplete(owner)
    response = _action(staff_client, "turn_on", ready, incomplete)
    assert response.status_code == 200
    assert sorted(_messages(response)) == [
        "1 journey(s) turned on.",
        "Half done: The journey needs a step and an SMTP credential before it can be turned on.",
    ]
    incomplete.refresh_from_db()
    ready.refresh_from_db()
    assert (ready.state, incomplete.state) == ("on", "draft")


def test_turning_off_a_draft_journey_shows_the_reason(staff_client, owner):
    journey = _journey(owner)
    response = _action(staff_client, "turn_off", journey)
    assert response.status_code == 200
    assert _messages(response) == ["Welcome: A draft journey is not on; there is nothing to turn off."]
    journey.refresh_from_db()
    assert journey.state == "draft"


def test_the_campaign_admin_lists_no_journey_and_the_journey_admin_no_campaign(staff_client, owner, journey):
    CampaignFactory(account=owner, name="Plain campaign")
    campaigns = staff_client.get("/admin/campaigns/campaign/")
    assert [c.name for c in campaigns.context["cl"].result_list] == ["Plain campaign"]
    assert staff_client.get(f"/admin/campaigns/campaign/{journey.pk}/change/").status_code == 302  # not found there
    journeys = staff_client.get(JOURNEYS)
    assert [j.name for j in journeys.context["cl"].result_list] == ["Welcome"]


def test_deleting_a_journey_in_the_admin_deletes_its_enrollments(staff_client, journey):
    response = staff_client.post(f"{JOURNEYS}{journey.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=journey.pk).exists()


# --- journey enrollments ------------------------------------------------------------------------


def _emails(client, query=""):
    response = client.get(ENROLLMENTS + query)
    assert response.status_code == 200
    return sorted(e.contact.email for e in response.context["cl"].result_list)


def test_the_enrollments_list_shows_status_round_and_exit_reason(
    staff_client, owner, journey, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        response = staff_client.get(ENROLLMENTS)
    assert response.status_code == 200
    rows = {e.contact.email: e for e in response.context["cl"].result_list}
    assert {email: (e.journey_status, e.exit_reason) for email, e in rows.items()} == {
        "active@example.com": ("active", None),
        "done@example.com": ("completed", None),
        "replied@example.com": ("exited", "replied"),
        "left@example.com": ("exited", "unsubscribed"),
    }
    page = response.content.decode()
    for header in ("Contact email", "Journey", "Journey status", "Round", "Enrolled at", "Completed at", "Exit reason"):
        assert header in page

    for n in range(10):  # more rows: still the same queries (contact and journey joined, status annotated)
        enroll(journey, "replied", contact=ContactFactory(account=owner, email=f"more{n}@example.com"))
    with django_assert_max_num_queries(12):
        assert staff_client.get(ENROLLMENTS).status_code == 200


def test_the_enrollments_list_filters_by_journey_status_and_journey_and_searches_by_email(staff_client, owner, journey):
    other = _journey(owner, "Other")
    enroll(other, "pending", contact=ContactFactory(account=owner, email="elsewhere@example.com"))
    campaign = CampaignFactory(account=owner)
    enroll(campaign, "pending", contact=ContactFactory(account=owner, email="campaign@example.com"))

    assert "campaign@example.com" not in _emails(staff_client)  # a campaign's enrollments are not a journey's
    assert _emails(staff_client, "?journey_status=exited") == ["left@example.com", "replied@example.com"]
    assert _emails(staff_client, "?journey_status=completed") == ["done@example.com"]
    assert _emails(staff_client, "?journey_status=active") == ["active@example.com", "elsewhere@example.com"]
    assert _emails(staff_client, f"?journey={other.pk}") == ["elsewhere@example.com"]
    assert _emails(staff_client, "?q=replied@") == ["replied@example.com"]


def test_an_enrollment_is_read_only(staff_client, journey):
    enrollment = journey.enrollments.get(contact__email="replied@example.com")
    response = staff_client.get(f"{ENROLLMENTS}{enrollment.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "replied@example.com" in page and "Exited" in page
    assert '<input type="submit" value="Save"' not in page
    assert staff_client.get(f"{ENROLLMENTS}add/").status_code == 403
    assert staff_client.post(f"{ENROLLMENTS}{enrollment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert journey.enrollments.filter(pk=enrollment.pk).exists()


def _inline(prefix, rows):
    data = {
        f"{prefix}-TOTAL_FORMS": len(rows),
        f"{prefix}-INITIAL_FORMS": 0,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{key}": value for key, value in row.items() if value is not None})
    return data


def test_a_hand_edited_journey_filter_shows_no_enrollment_instead_of_failing(staff_client, journey):
    response = staff_client.get("/admin/journeys/journeyenrollment/?journey=not-a-uuid")
    assert response.status_code == 200
    assert b"0 journey enrollments" in response.content
