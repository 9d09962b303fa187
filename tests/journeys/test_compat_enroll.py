"""POST /api/v1/journeys/:id/enroll, to the letter of shared/seeds/compat-v1-journeys-enroll.md.

Every example payload of the seed is posted verbatim, and every documented
error is asserted with its exact status and body (the seed's shapes, not the
native envelope).
"""

import datetime
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_key_create
from config.celery import app as celery_app
from contacts.models import ContactList, ContactListMember
from journeys.models import JourneyEnrollment
from journeys.services import journey_create, journey_turn_off, journey_turn_on
from mailing.models import ScheduledSend
from tests.campaigns.factories import CampaignFactory
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

STEPS = [
    {"position": 1, "subject": "Welcome {{first_name|there}}", "body_html": "<p>Hi</p>", "delay_minutes": 0},
    {"position": 2, "subject": "Day two", "body_html": "<p>Again</p>", "delay_minutes": 1440},
]
CREDENTIALS = [
    {
        "label": "Primary",
        "smtp_host": "smtp.example.com",
        "smtp_port": 587,
        "smtp_username": "hello@example.com",
        "smtp_password": "smtp-secret",
        "daily_limit": 200,
    }
]
NOTHING_NOT_ENROLLED = {"not_found": [], "already_enrolled": [], "recently_completed": []}


def _journey(account, *, on=True, name="Onboarding"):
    journey = journey_create(account=account, name=name, steps=STEPS, smtp_credentials=CREDENTIALS)
    return journey_turn_on(journey=journey) if on else journey


@pytest.fixture
def journey(owner):
    return _journey(owner)


def _contacts(account, *emails, **fields):
    return [ContactFactory(account=account, email=email, **fields) for email in emails]


def _list(account, address, members=()):
    contact_list = ContactList.objects.create(account=account, name=address.split("@")[0], email_address=address)
    ContactListMember.objects.bulk_create(ContactListMember(contact_list=contact_list, contact=c) for c in members)
    return contact_list


def _enroll(client, journey_id, body, *, path_suffix="", **kwargs):
    return client.post(f"/api/v1/journeys/{journey_id}/enroll{path_suffix}", body, format="json", **kwargs)


def _enrolled_emails(journey):
    return sorted(JourneyEnrollment.objects.filter(campaign_id=journey.pk).values_list("contact__email", flat=True))


# --- the seed's example payloads, verbatim -------------------------------------------------------------------


def test_seed_payload_enroll_individual_contacts(api, owner, journey):
    _contacts(owner, "user1@example.com", "user2@example.com", "user3@example.com")
    body = {"contact_email_addresses": ["user1@example.com", "user2@example.com", "user3@example.com"]}
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 200
    assert response.json() == {"enrolled_count": 3, "not_enrolled": NOTHING_NOT_ENROLLED}
    assert _enrolled_emails(journey) == ["user1@example.com", "user2@example.com", "user3@example.com"]


def test_seed_payload_enroll_all_members_of_lists_counts_a_person_in_both_lists_once(api, owner, journey):
    ann, bob, cat = _contacts(owner, "ann@example.com", "bob@example.com", "cat@example.com")
    _list(owner, "team@company.com", [ann, bob])
    _list(owner, "engineering@company.com", [bob, cat])
    response = _enroll(api, journey.pk, {"list_email_addresses": ["team@company.com", "engineering@company.com"]})
    assert response.status_code == 200
    assert response.json() == {"enrolled_count": 3, "not_enrolled": NOTHING_NOT_ENROLLED}
    assert _enrolled_emails(journey) == ["ann@example.com", "bob@example.com", "cat@example.com"]


def test_seed_payload_combine_both_methods_counts_a_person_named_and_listed_once(api, owner, journey):
    user1, other = _contacts(owner, "user1@example.com", "other@example.com")
    _list(owner, "team@company.com", [user1, other])
    body = {"contact_email_addresses": ["user1@example.com"], "list_email_addresses": ["team@company.com"]}
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 200
    assert response.json() == {"enrolled_count": 2, "not_enrolled": NOTHING_NOT_ENROLLED}
    assert _enrolled_emails(journey) == ["other@example.com", "user1@example.com"]


def test_the_seeds_success_response_with_every_reason_not_to_enroll(api, owner, journey):
    _contacts(
        owner, "new.one@example.com", "new.two@example.com", "already.in@example.com", "just.finished@example.com"
    )
    first = _enroll(
        api, journey.pk, {"contact_email_addresses": ["already.in@example.com", "just.finished@example.com"]}
    )
    assert first.json()["enrolled_count"] == 2
    JourneyEnrollment.objects.filter(contact__email="just.finished@example.com").update(
        status="sent", sent_at=timezone.now() - datetime.timedelta(days=1), completed_at=timezone.now()
    )
    body = {
        "contact_email_addresses": [
            "new.one@example.com",
            "unknown@example.com",
            "already.in@example.com",
            "just.finished@example.com",
            "new.two@example.com",
        ]
    }
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 200
    assert response.json() == {
        "enrolled_count": 2,
        "not_enrolled": {
            "not_found": ["unknown@example.com"],
            "already_enrolled": ["already.in@example.com"],
            "recently_completed": ["just.finished@example.com"],
        },
    }


# --- the seed's errors, exact status and body ----------------------------------------------------------------


@pytest.mark.parametrize("journey_id", ["0b9c1b3e-5a4f-4d7e-9c2a-6f1e2d3c4b5a", "not-a-uuid", "12345"])
def test_an_unknown_or_malformed_journey_id_is_the_seeds_404(api, owner, journey_id):
    _contacts(owner, "user1@example.com")
    response = _enroll(api, journey_id, {"contact_email_addresses": ["user1@example.com"]})
    assert response.status_code == 404
    assert response.json() == {"error": "Journey not found"}


def test_another_accounts_journey_is_the_seeds_404_and_nothing_is_enrolled(outsider_api, owner, journey):
    _contacts(owner, "user1@example.com")
    response = _enroll(outsider_api, journey.pk, {"contact_email_addresses": ["user1@example.com"]})
    assert response.status_code == 404
    assert response.json() == {"error": "Journey not found"}
    assert not JourneyEnrollment.objects.exists()


def test_a_campaign_that_is_not_a_journey_is_the_seeds_404(api, owner):
    _contacts(owner, "user1@example.com")
    campaign = CampaignFactory(account=owner, status="active")
    response = _enroll(api, campaign.pk, {"contact_email_addresses": ["user1@example.com"]})
    assert response.status_code == 404
    assert response.json() == {"error": "Journey not found"}


def test_a_draft_journey_is_the_seeds_422_naming_its_state(api, owner):
    _contacts(owner, "user1@example.com")
    draft = _journey(owner, on=False)
    response = _enroll(api, draft.pk, {"contact_email_addresses": ["user1@example.com"]})
    assert response.status_code == 422
    assert response.json() == {"error": "Journey must be in 'on' state to enroll people. Current state: draft"}
    assert not JourneyEnrollment.objects.exists()


def test_a_journey_turned_off_answers_the_same_422_with_state_off(api, owner, journey):
    _contacts(owner, "user1@example.com")
    journey_turn_off(journey=journey)
    response = _enroll(api, journey.pk, {"contact_email_addresses": ["user1@example.com"]})
    assert response.status_code == 422
    assert response.json() == {"error": "Journey must be in 'on' state to enroll people. Current state: off"}


NO_EMAILS = {"error": {"base": ["at least one of contact_email_addresses or list_email_addresses must be provided"]}}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"contact_email_addresses": []},
        {"contact_email_addresses": [], "list_email_addresses": []},
        {"contact_email_addresses": None, "list_email_addresses": None},
    ],
)
def test_no_addresses_is_the_seeds_422_with_base(api, journey, body):
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 422
    assert response.json() == NO_EMAILS


def test_an_empty_body_is_the_seeds_422_with_base(api, journey):
    response = api.post(f"/api/v1/journeys/{journey.pk}/enroll")
    assert response.status_code == 422
    assert response.json() == NO_EMAILS


def test_an_unknown_list_address_is_the_seeds_422_and_nobody_is_enrolled(api, owner, journey):
    _contacts(owner, "user1@example.com")
    _list(owner, "team@company.com", _contacts(owner, "other@example.com"))
    body = {
        "contact_email_addresses": ["user1@example.com"],
        "list_email_addresses": ["team@company.com", "nonexistent@company.com"],
    }
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 422
    assert response.json() == {"error": "No list found with email address: nonexistent@company.com"}
    assert not JourneyEnrollment.objects.exists()


def test_another_accounts_list_address_is_not_found(api, owner, outsider, journey):
    _list(outsider, "theirs@company.com", _contacts(outsider, "their.member@example.com"))
    response = _enroll(api, journey.pk, {"list_email_addresses": ["theirs@company.com"]})
    assert response.status_code == 422
    assert response.json() == {"error": "No list found with email address: theirs@company.com"}


def test_a_missing_token_is_401_in_the_seeds_shape(anon_api, owner, journey):
    _contacts(owner, "user1@example.com")
    response = _enroll(anon_api, journey.pk, {"contact_email_addresses": ["user1@example.com"]})
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}
    assert not JourneyEnrollment.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Bearer not-a-real-key"},
        {"HTTP_AUTHORIZATION": "Token whatever"},
        {"HTTP_X_API_KEY": "not-a-real-key"},
    ],
)
def test_a_bad_token_is_401_in_the_seeds_shape(owner, journey, headers):
    response = _enroll(APIClient(), journey.pk, {"contact_email_addresses": ["user1@example.com"]}, **headers)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


def test_an_unknown_journey_without_a_token_is_401_not_404(anon_api):
    response = _enroll(anon_api, uuid.uuid4(), {"contact_email_addresses": ["user1@example.com"]})
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


def test_a_revoked_key_is_401(owner, journey):
    from accounts.services import api_key_revoke

    api_key, raw = api_key_create(account=owner)
    api_key_revoke(api_key=api_key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = _enroll(client, journey.pk, {"contact_email_addresses": ["user1@example.com"]})
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


def test_the_x_api_key_header_authenticates_too(owner, journey):
    _contacts(owner, "user1@example.com")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key_create(account=owner)[1])
    response = _enroll(client, journey.pk, {"contact_email_addresses": ["user1@example.com"]})
    assert response.status_code == 200
    assert response.json() == {"enrolled_count": 1, "not_enrolled": NOTHING_NOT_ENROLLED}


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_405_in_the_seeds_shape(api, journey, method):
    response = getattr(api, method)(f"/api/v1/journeys/{journey.pk}/enroll")
    assert response.status_code == 405
    assert response.json() == {"error": "Method Not Allowed"}
    assert response["Allow"] == "POST"


def test_the_path_works_with_a_trailing_slash(api, owner, journey):
    _contacts(owner, "user1@example.com")
    response = _enroll(api, journey.pk, {"contact_email_addresses": ["user1@example.com"]}, path_suffix="/")
    assert response.status_code == 200
    assert response.json() == {"enrolled_count": 1, "not_enrolled": NOTHING_NOT_ENROLLED}


# --- invalid parameters: 422 in the seed's `{"error": {"<param>": [...]}}` shape, never a 500 -------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"contact_email_addresses": "user1@example.com"},
            {"contact_email_addresses": ["must be an array of strings"]},
        ),
        (
            {"contact_email_addresses": ["ok@example.com", 7]},
            {"contact_email_addresses": ["must be an array of strings"]},
        ),
        ({"contact_email_addresses": [None]}, {"contact_email_addresses": ["must be an array of strings"]}),
        (
            {"list_email_addresses": {"a": "team@company.com"}},
            {"list_email_addresses": ["must be an array of strings"]},
        ),
        (
            {"contact_email_addresses": 1, "list_email_addresses": [["x"]]},
            {
                "contact_email_addresses": ["must be an array of strings"],
                "list_email_addresses": ["must be an array of strings"],
            },
        ),
    ],
)
def test_a_parameter_that_is_not_an_array_of_strings_is_a_422_naming_it(api, journey, body, error):
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 422
    assert response.json() == {"error": error}


@pytest.mark.parametrize("raw", ['{"contact_email_addresses": [', "not json", '["user1@example.com"]', '"text"', "3"])
def test_a_body_that_is_not_a_json_object_is_a_422_in_the_seeds_shape(api, journey, raw):
    response = api.post(f"/api/v1/journeys/{journey.pk}/enroll", raw, content_type="application/json")
    assert response.status_code == 422
    assert set(response.json()) == {"error"}
    assert list(response.json()["error"]) == ["base"]


def test_a_nul_character_is_a_422_in_the_seeds_shape(api, journey):
    raw = '{"contact_email_addresses": ["a\\u0000b@example.com"]}'
    response = api.post(f"/api/v1/journeys/{journey.pk}/enroll", raw, content_type="application/json")
    assert response.status_code == 422
    assert response.json() == {"error": {"base": ["NUL characters (\\u0000) are not allowed."]}}


def test_more_than_1000_contact_addresses_is_a_422_naming_the_limit(api, journey):
    body = {"contact_email_addresses": [f"p{n}@example.com" for n in range(1001)]}
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 422
    assert response.json() == {
        "error": {"contact_email_addresses": ["at most 1000 addresses per request (1001 given)"]}
    }


def test_more_than_100_list_addresses_is_a_422_naming_the_limit(api, journey):
    body = {"list_email_addresses": [f"list{n}@company.com" for n in range(101)]}
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 422
    assert response.json() == {"error": {"list_email_addresses": ["at most 100 addresses per request (101 given)"]}}


def test_exactly_1000_contact_addresses_are_accepted(api, owner, journey):
    _contacts(owner, "p0@example.com", "p999@example.com")
    body = {"contact_email_addresses": [f"p{n}@example.com" for n in range(1000)]}
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 200
    assert response.json()["enrolled_count"] == 2
    assert len(response.json()["not_enrolled"]["not_found"]) == 998


def test_a_form_encoded_body_is_read_as_the_vendor_reads_it(api, owner, journey):
    _contacts(owner, "user1@example.com", "user2@example.com")
    response = api.post(
        f"/api/v1/journeys/{journey.pk}/enroll",
        "contact_email_addresses[]=user1@example.com&contact_email_addresses[]=user2@example.com",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert response.json() == {"enrolled_count": 2, "not_enrolled": NOTHING_NOT_ENROLLED}


def test_unknown_keys_are_ignored(api, owner, journey):
    _contacts(owner, "user1@example.com")
    response = _enroll(api, journey.pk, {"contact_email_addresses": ["user1@example.com"], "source": "crm"})
    assert response.status_code == 200
    assert response.json()["enrolled_count"] == 1


# --- the seed's notes and requirements ----------------------------------------------------------------------


def test_addresses_are_trimmed_and_lowercased_before_matching(api, owner, journey):
    _contacts(owner, "user1@example.com")
    _list(owner, "team@company.com", _contacts(owner, "member@example.com"))
    body = {
        "contact_email_addresses": ["  User1@Example.com ", "  Unknown@Example.COM"],
        "list_email_addresses": [" TEAM@Company.com  "],
    }
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 200
    assert response.json() == {
        "enrolled_count": 2,
        "not_enrolled": {"not_found": ["unknown@example.com"], "already_enrolled": [], "recently_completed": []},
    }
    assert _enrolled_emails(journey) == ["member@example.com", "user1@example.com"]


def test_one_person_named_in_many_ways_is_enrolled_once(api, owner, journey):
    (user1,) = _contacts(owner, "user1@example.com")
    _list(owner, "team@company.com", [user1])
    _list(owner, "engineering@company.com", [user1])
    body = {
        "contact_email_addresses": ["user1@example.com", "USER1@example.com ", "user1@example.com"],
        "list_email_addresses": ["team@company.com", "engineering@company.com", "Team@Company.com"],
    }
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 200
    assert response.json() == {"enrolled_count": 1, "not_enrolled": NOTHING_NOT_ENROLLED}
    assert JourneyEnrollment.objects.filter(campaign_id=journey.pk).count() == 1


def test_an_unsubscribed_contact_counts_as_not_found(api, owner, journey):
    _contacts(owner, "gone@example.com", subscribed=False, unsubscribed_at=timezone.now())
    _contacts(owner, "here@example.com")
    response = _enroll(api, journey.pk, {"contact_email_addresses": ["gone@example.com", "here@example.com"]})
    assert response.status_code == 200
    assert response.json() == {
        "enrolled_count": 1,
        "not_enrolled": {"not_found": ["gone@example.com"], "already_enrolled": [], "recently_completed": []},
    }


def test_not_found_reports_only_contact_addresses_never_list_members(api, owner, journey):
    gone = ContactFactory(account=owner, email="gone.member@example.com", subscribed=False)
    _list(owner, "team@company.com", [gone, *_contacts(owner, "member@example.com")])
    body = {"contact_email_addresses": ["nobody@example.com"], "list_email_addresses": ["team@company.com"]}
    response = _enroll(api, journey.pk, body)
    assert response.status_code == 200
    assert response.json() == {
        "enrolled_count": 1,
        "not_enrolled": {"not_found": ["nobody@example.com"], "already_enrolled": [], "recently_completed": []},
    }
    assert _enrolled_emails(journey) == ["member@example.com"]


def test_nobody_to_enroll_is_still_a_200_with_enrolled_count_0(api, journey):
    response = _enroll(api, journey.pk, {"contact_email_addresses": ["unknown@example.com"]})
    assert response.status_code == 200
    assert response.json() == {
        "enrolled_count": 0,
        "not_enrolled": {"not_found": ["unknown@example.com"], "already_enrolled": [], "recently_completed": []},
    }


def test_an_empty_list_enrolls_nobody_with_a_200(api, owner, journey):
    _list(owner, "empty@company.com")
    response = _enroll(api, journey.pk, {"list_email_addresses": ["empty@company.com"]})
    assert response.status_code == 200
    assert response.json() == {"enrolled_count": 0, "not_enrolled": NOTHING_NOT_ENROLLED}


def test_a_contact_already_enrolled_is_reported_and_not_enrolled_twice(api, owner, journey):
    (user1,) = _contacts(owner, "user1@example.com")
    _list(owner, "team@company.com", [user1])
    assert _enroll(api, journey.pk, {"contact_email_addresses": ["user1@example.com"]}).json()["enrolled_count"] == 1
    again = _enroll(api, journey.pk, {"contact_email_addresses": ["user1@example.com"]})
    assert again.json() == {
        "enrolled_count": 0,
        "not_enrolled": {"not_found": [], "already_enrolled": ["user1@example.com"], "recently_completed": []},
    }
    by_list = _enroll(api, journey.pk, {"list_email_addresses": ["team@company.com"]})
    assert by_list.json() == {
        "enrolled_count": 0,
        "not_enrolled": {"not_found": [], "already_enrolled": ["user1@example.com"], "recently_completed": []},
    }
    assert JourneyEnrollment.objects.filter(campaign_id=journey.pk).count() == 1


def _complete(email, *, hours_ago):
    completed_at = timezone.now() - datetime.timedelta(hours=hours_ago)
    JourneyEnrollment.objects.filter(contact__email=email).update(
        status="sent", sent_at=completed_at - datetime.timedelta(days=1), completed_at=completed_at
    )


def test_a_contact_who_completed_2_hours_ago_is_recently_completed(api, owner, journey):
    _contacts(owner, "done@example.com")
    _enroll(api, journey.pk, {"contact_email_addresses": ["done@example.com"]})
    _complete("done@example.com", hours_ago=2)
    response = _enroll(api, journey.pk, {"contact_email_addresses": ["done@example.com"]})
    assert response.status_code == 200
    assert response.json() == {
        "enrolled_count": 0,
        "not_enrolled": {"not_found": [], "already_enrolled": [], "recently_completed": ["done@example.com"]},
    }


def test_a_contact_who_completed_13_hours_ago_is_enrolled_again_as_round_2(api, owner, journey):
    _contacts(owner, "done@example.com")
    _enroll(api, journey.pk, {"contact_email_addresses": ["done@example.com"]})
    _complete("done@example.com", hours_ago=13)
    response = _enroll(api, journey.pk, {"contact_email_addresses": ["done@example.com"]})
    assert response.status_code == 200
    assert response.json() == {"enrolled_count": 1, "not_enrolled": NOTHING_NOT_ENROLLED}
    rounds = JourneyEnrollment.objects.filter(campaign_id=journey.pk).order_by("round")
    assert [(e.round, e.completed_at is not None) for e in rounds] == [(1, True), (2, False)]


def test_another_accounts_contacts_are_never_enrolled(api, owner, outsider, journey):
    _contacts(outsider, "theirs@example.com")
    response = _enroll(api, journey.pk, {"contact_email_addresses": ["theirs@example.com"]})
    assert response.json() == {
        "enrolled_count": 0,
        "not_enrolled": {"not_found": ["theirs@example.com"], "already_enrolled": [], "recently_completed": []},
    }
    assert not JourneyEnrollment.objects.exists()


def test_another_journey_of_the_account_is_separate(api, owner, journey):
    _contacts(owner, "user1@example.com")
    second = _journey(owner, name="Second")
    assert _enroll(api, journey.pk, {"contact_email_addresses": ["user1@example.com"]}).json()["enrolled_count"] == 1
    assert _enroll(api, second.pk, {"contact_email_addresses": ["user1@example.com"]}).json()["enrolled_count"] == 1


@pytest.fixture
def eager_tasks():
    """Run `.delay()` in process, so the enroll's on-commit dispatch happens within the test."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


def test_enrolling_schedules_every_step_through_the_send_pipeline(
    api, owner, journey, eager_tasks, django_capture_on_commit_callbacks
):
    _contacts(owner, "user1@example.com", "user2@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = _enroll(api, journey.pk, {"contact_email_addresses": ["user1@example.com", "user2@example.com"]})
    assert response.json()["enrolled_count"] == 2
    sends = ScheduledSend.objects.filter(campaign_id=journey.pk).select_related("step", "enrollment__contact")
    by_contact: dict[str, list] = {}
    for send in sends:
        by_contact.setdefault(send.enrollment.contact.email, []).append(send)
    assert sorted(by_contact) == ["user1@example.com", "user2@example.com"]
    for planned in by_contact.values():
        first, second = sorted(planned, key=lambda s: s.step.position)
        assert first.status == "scheduled"
        assert first.send_at <= timezone.now() + datetime.timedelta(minutes=30)  # step 1 is due now, with jitter
        assert second.send_at - first.send_at == datetime.timedelta(minutes=1440)


def test_the_enroll_registers_its_dispatch_after_the_commit(api, owner, journey, django_capture_on_commit_callbacks):
    _contacts(owner, "user1@example.com")
    with django_capture_on_commit_callbacks() as callbacks:
        _enroll(api, journey.pk, {"contact_email_addresses": ["user1@example.com"]})
    assert len(callbacks) == 1
    assert not ScheduledSend.objects.exists()  # nothing is scheduled inside the request's transaction


# --- the schema --------------------------------------------------------------------------------------------


def test_the_schema_documents_the_compat_enroll_with_every_status(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/journeys/{journey_id}/enroll/"]["post"]
    assert operation["tags"] == ["Compat: journeys"]
    assert set(operation["responses"]) == {"200", "401", "404", "405", "422"}
    examples = operation["responses"]["422"]["content"]["application/json"]["examples"]
    values = [example["value"] for example in examples.values()]
    assert {"error": "Journey must be in 'on' state to enroll people. Current state: draft"} in values
    assert NO_EMAILS in values
    assert {"error": "No list found with email address: nonexistent@company.com"} in values
    assert "cannot occur" in operation["description"] and "unique per account" in operation["description"]
    assert len(operation["requestBody"]["content"]["application/json"]["examples"]) == 3


def test_a_nul_character_in_a_form_encoded_body_is_a_422_too(api, journey):
    response = api.post(
        f"/api/v1/journeys/{journey.pk}/enroll",
        "contact_email_addresses[]=a%00b%40example.com",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 422
    assert response.json() == {"error": {"contact_email_addresses": ["must not contain NUL characters"]}}
