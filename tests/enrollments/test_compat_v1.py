"""/api/v1/enrollments, to the letter of shared/seeds/compat-v1-enrollments.md, through the HTTP API.

The seed's examples are posted verbatim (form-encoded, as its curl sends
them, and as JSON); its ids (`camp_…`, `cont_…`) are not ours, so they answer
the documented 404s (or an empty list), and the same requests with our ids
answer the seed's shapes. The seed shows no error body: errors are in the
native envelope.
"""

import datetime
import threading
import uuid

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_key_create
from config.celery import app as celery_app
from enrollments.models import Enrollment
from journeys.services import journey_create, journey_turn_on
from mailing.models import ScheduledSend
from tests.campaigns.factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory, enroll
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/enrollments"
FIELDS = {"id", "campaign_id", "contact_id", "enrolled_at", "completed", "created_at", "updated_at"}
SEED_CAMPAIGN, SEED_CONTACT = "camp_Kd93lftgZXGRbxqoj", "cont_KYdl3lftgZXGRbxqoj"


@pytest.fixture
def eager_tasks():
    """Run `.delay()` in process, so the enroll's on-commit dispatch happens within the test."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


def _campaign(account, *, status="pending", steps=2, daily_limit=200):
    campaign = CampaignFactory(account=account, status=status, min_wait_seconds=60, max_wait_seconds=120)
    for position in range(1, steps + 1):
        SequenceStepFactory(campaign=campaign, position=position, delay_minutes=0 if position == 1 else 1440)
    SmtpCredentialFactory(campaign=campaign, daily_limit=daily_limit)
    return campaign


@pytest.fixture
def campaign(owner):
    return _campaign(owner)


@pytest.fixture
def contact(owner):
    return ContactFactory(account=owner)


def _error(response, status_code, code):
    assert response.status_code == status_code, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def _post(api, campaign_id, contact_id, *, form=True):
    body = {"campaign_id": str(campaign_id), "contact_id": str(contact_id)}
    if form:
        return api.post(URL, body)  # APIClient's default: form fields, like curl -d
    return api.post(URL, body, format="json")


def _stamp(value):
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the seed's examples, verbatim -------------------------------------------------------------------------


def test_seed_list_example_verbatim_answers_the_seed_shape(api):
    response = api.get(URL, {"campaign_id": SEED_CAMPAIGN})  # curl -G … -d campaign_id=…
    assert response.status_code == 200
    assert response.json() == {"enrollments": [], "pagination": {"page": 1, "limit": 25, "total": 0, "total_pages": 0}}


def test_seed_create_example_verbatim_form_encoded_answers_campaign_not_found(api):
    response = api.post(URL, f"campaign_id={SEED_CAMPAIGN}&contact_id={SEED_CONTACT}", content_type=FORM)
    _error(response, 404, "campaign_not_found")


FORM = "application/x-www-form-urlencoded"


def test_seed_create_example_verbatim_as_json_answers_campaign_not_found(api):
    response = api.post(URL, {"campaign_id": SEED_CAMPAIGN, "contact_id": SEED_CONTACT}, format="json")
    _error(response, 404, "campaign_not_found")


def test_seed_create_example_with_our_campaign_and_their_contact_answers_contact_not_found(api, campaign):
    response = api.post(URL, f"campaign_id={campaign.pk}&contact_id={SEED_CONTACT}", content_type=FORM)
    _error(response, 404, "contact_not_found")


def test_seed_retrieve_and_delete_examples_verbatim_answer_enrollment_not_found(api):
    _error(api.get(f"{URL}/1"), 404, "enrollment_not_found")
    _error(api.delete(f"{URL}/1"), 404, "enrollment_not_found")


def test_seed_create_example_form_encoded_with_our_ids_answers_201_with_every_field(api, campaign, contact):
    before = timezone.now()
    response = api.post(URL, f"campaign_id={campaign.pk}&contact_id={contact.pk}", content_type=FORM)
    assert response.status_code == 201, response.content
    body = response.json()
    enrollment = Enrollment.objects.get()
    assert set(body) == FIELDS
    assert body == {
        "id": enrollment.pk,
        "campaign_id": str(campaign.pk),
        "contact_id": str(contact.pk),
        "enrolled_at": _stamp(enrollment.created_at),
        "completed": False,
        "created_at": _stamp(enrollment.created_at),
        "updated_at": _stamp(enrollment.updated_at),
    }
    assert isinstance(body["id"], int)
    assert enrollment.created_at >= before


def test_create_accepts_json_too(api, campaign, contact):
    response = _post(api, campaign.pk, contact.pk, form=False)
    assert response.status_code == 201
    assert response.json()["contact_id"] == str(contact.pk)


def test_create_ignores_unknown_keys(api, campaign, contact):
    body = {"campaign_id": str(campaign.pk), "contact_id": str(contact.pk), "source": "zapier"}
    assert api.post(URL, body, format="json").status_code == 201


def test_paths_work_with_and_without_a_trailing_slash(api, campaign, contact):
    created = api.post(f"{URL}/", {"campaign_id": str(campaign.pk), "contact_id": str(contact.pk)}).json()
    assert api.get(f"{URL}/").status_code == 200
    assert api.get(f"{URL}/{created['id']}/").json() == created
    assert api.get(f"{URL}/{created['id']}").json() == created
    assert api.delete(f"{URL}/{created['id']}/").status_code == 204


# --- create: validation and refusals -----------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["campaign_id", "contact_id"])
def test_create_without_a_required_attribute_is_a_422_naming_it(api, campaign, contact, missing):
    body = {"campaign_id": str(campaign.pk), "contact_id": str(contact.pk)}
    del body[missing]
    error = _error(api.post(URL, body), 422, "validation_failed")
    assert list(error["details"]) == [missing]


def test_create_with_a_body_that_is_not_json_is_the_native_400(api):
    response = api.post(URL, "{not json", content_type="application/json")
    _error(response, 400, "malformed_json")


def test_create_with_an_unknown_or_malformed_contact_is_contact_not_found(api, campaign):
    _error(_post(api, campaign.pk, uuid.uuid4()), 404, "contact_not_found")
    _error(_post(api, campaign.pk, "nope"), 404, "contact_not_found")


def test_create_with_a_journey_id_is_campaign_not_found(api, owner, contact):
    journey = journey_create(
        account=owner,
        name="Onboarding",
        steps=[{"position": 1, "subject": "Hi", "body_html": "<p>Hi</p>", "delay_minutes": 0}],
        smtp_credentials=[
            {
                "label": "Primary",
                "smtp_host": "smtp.example.com",
                "smtp_port": 587,
                "smtp_username": "hello@example.com",
                "smtp_password": "secret",
                "daily_limit": 10,
            }
        ],
    )
    _error(_post(api, journey.pk, contact.pk), 404, "campaign_not_found")


def test_create_with_another_accounts_campaign_or_contact_is_a_404(api, outsider, campaign, contact):
    _error(_post(api, _campaign(outsider).pk, contact.pk), 404, "campaign_not_found")
    _error(_post(api, campaign.pk, ContactFactory(account=outsider).pk), 404, "contact_not_found")
    assert not Enrollment.objects.exists()


def test_create_for_an_unsubscribed_contact_is_refused(api, owner, campaign):
    contact = ContactFactory(account=owner, subscribed=False)
    _error(_post(api, campaign.pk, contact.pk), 422, "contact_unsubscribed")


def test_a_contact_in_the_campaign_now_is_already_enrolled(api, campaign, contact):
    assert _post(api, campaign.pk, contact.pk).status_code == 201
    _error(_post(api, campaign.pk, contact.pk), 422, "contact_already_enrolled")
    assert Enrollment.objects.count() == 1


@pytest.mark.parametrize(
    "stop",
    [
        {"status": "sent", "completed_at": True},
        {"status": "replied"},
        {"status": "bounced"},
        {"status": "sent", "unsubscribed_at": True},
    ],
)
def test_finished_less_than_12_hours_ago_is_already_enrolled_and_earlier_is_a_new_round(api, campaign, contact, stop):
    recently = timezone.now() - datetime.timedelta(hours=11, minutes=59)
    fields = {key: recently for key, value in stop.items() if value is True}
    first = enroll(campaign, stop["status"], when=recently, contact=contact, **fields)
    _error(_post(api, campaign.pk, contact.pk), 422, "contact_already_enrolled")

    long_ago = timezone.now() - datetime.timedelta(hours=12, minutes=1)
    moved = dict.fromkeys(("sent_at", "completed_at", "replied_at", "bounced_at", "unsubscribed_at"), long_ago)
    Enrollment.objects.filter(pk=first.pk).update(**{k: v for k, v in moved.items() if getattr(first, k)})
    response = _post(api, campaign.pk, contact.pk)
    assert response.status_code == 201, response.content
    second = Enrollment.objects.get(pk=response.json()["id"])
    assert (second.round, second.pk > first.pk, response.json()["completed"]) == (2, True, False)
    _error(_post(api, campaign.pk, contact.pk), 422, "contact_already_enrolled")


# --- create: when the sends are scheduled ------------------------------------------------------------------


def test_on_a_campaign_not_yet_dispatched_the_enrollment_waits_for_the_first_dispatch(
    api, owner, campaign, contact, django_capture_on_commit_callbacks
):
    enroll(campaign, batch=3, contact=ContactFactory(account=owner))
    enroll(campaign, batch=4, contact=ContactFactory(account=owner))
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(api, campaign.pk, contact.pk)
    assert response.status_code == 201
    assert callbacks == []
    assert not ScheduledSend.objects.exists()
    enrollment = Enrollment.objects.get(pk=response.json()["id"])
    assert enrollment.batch_number == 3  # the lowest batch: the first dispatch takes it

    dispatched = api.post(f"/api/campaigns/{campaign.pk}/dispatch", {}, format="json")
    assert dispatched.status_code == 200, dispatched.content
    assert dispatched.json()["batch_number"] == 3
    assert ScheduledSend.objects.filter(enrollment=enrollment).count() == 2


def test_on_an_empty_campaign_not_yet_dispatched_the_enrollment_is_in_batch_1(api, campaign, contact):
    response = _post(api, campaign.pk, contact.pk)
    assert Enrollment.objects.get(pk=response.json()["id"]).batch_number == 1


def test_on_an_active_campaign_the_sends_of_the_one_enrollment_are_scheduled_at_once_behind_the_others(
    api, owner, campaign, contact, eager_tasks, django_capture_on_commit_callbacks
):
    others = [enroll(campaign, batch=1, contact=ContactFactory(account=owner)) for _ in range(3)]
    waiting = enroll(campaign, batch=2, contact=ContactFactory(account=owner))
    assert api.post(f"/api/campaigns/{campaign.pk}/dispatch", {"batch_number": 1}, format="json").status_code == 200
    last_scheduled = max(
        ScheduledSend.objects.filter(enrollment__in=others, step__position=1).values_list("send_at", flat=True)
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api, campaign.pk, contact.pk)
    assert response.status_code == 201
    enrollment = Enrollment.objects.get(pk=response.json()["id"])
    assert enrollment.batch_number == 3  # a batch of its own
    first, second = ScheduledSend.objects.filter(enrollment=enrollment).order_by("step__position")
    assert first.status == "scheduled" and first.send_at >= last_scheduled + datetime.timedelta(seconds=60)
    assert second.send_at - first.send_at == datetime.timedelta(minutes=1440)
    assert not ScheduledSend.objects.filter(enrollment=waiting).exists()  # a dispatch of one, not of batch 2


def test_on_an_active_campaign_with_todays_slots_taken_the_enrollment_starts_the_next_day(
    api, owner, contact, eager_tasks, django_capture_on_commit_callbacks
):
    campaign = _campaign(owner, daily_limit=1)
    enroll(campaign, batch=1, contact=ContactFactory(account=owner))
    assert api.post(f"/api/campaigns/{campaign.pk}/dispatch", {}, format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api, campaign.pk, contact.pk)
    first = ScheduledSend.objects.get(enrollment_id=response.json()["id"], step__position=1)
    assert first.send_at.date() > timezone.now().date() or first.send_at - timezone.now() > datetime.timedelta(hours=1)


def test_the_dispatch_is_handed_to_a_task_after_the_commit(api, owner, contact, django_capture_on_commit_callbacks):
    campaign = _campaign(owner, status="active")
    with django_capture_on_commit_callbacks() as callbacks:
        assert _post(api, campaign.pk, contact.pk).status_code == 201
    assert len(callbacks) == 1
    assert not ScheduledSend.objects.exists()  # nothing scheduled inside the request's transaction


def test_on_a_paused_campaign_nothing_is_scheduled(api, owner, contact, django_capture_on_commit_callbacks):
    campaign = _campaign(owner, status="paused")
    with django_capture_on_commit_callbacks() as callbacks:
        assert _post(api, campaign.pk, contact.pk).status_code == 201
    assert callbacks == []


# --- retrieve and delete -----------------------------------------------------------------------------------


def test_retrieve_answers_the_enrollment(api, campaign, contact):
    created = _post(api, campaign.pk, contact.pk).json()
    response = api.get(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize(
    "bad",
    ["abc", "0", "-1", "1.5", "99999999999999999999", "9223372036854775808", "2b1f9d4e-8a61-4c55-9a57-0c2f3b7de0a1"],
)
def test_a_malformed_or_out_of_range_id_is_a_404(api, bad):
    _error(api.get(f"{URL}/{bad}"), 404, "enrollment_not_found")
    _error(api.delete(f"{URL}/{bad}"), 404, "enrollment_not_found")


def test_delete_removes_the_enrollment_and_every_send_it_still_has_scheduled(
    api, owner, campaign, contact, eager_tasks, django_capture_on_commit_callbacks
):
    kept = enroll(campaign, batch=1, contact=ContactFactory(account=owner))
    api.post(f"/api/campaigns/{campaign.pk}/dispatch", {}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        created = _post(api, campaign.pk, contact.pk).json()
    assert ScheduledSend.objects.filter(enrollment_id=created["id"], status="scheduled").count() == 2

    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    assert not Enrollment.objects.filter(pk=created["id"]).exists()
    assert not ScheduledSend.objects.filter(enrollment_id=created["id"]).exists()
    assert ScheduledSend.objects.filter(enrollment=kept).count() == 2
    _error(api.get(f"{URL}/{created['id']}"), 404, "enrollment_not_found")
    _error(api.delete(f"{URL}/{created['id']}"), 404, "enrollment_not_found")


def test_another_accounts_enrollment_is_a_404_and_absent_from_lists(api, outsider, outsider_api):
    theirs = enroll(_campaign(outsider), contact=ContactFactory(account=outsider))
    _error(api.get(f"{URL}/{theirs.pk}"), 404, "enrollment_not_found")
    _error(api.delete(f"{URL}/{theirs.pk}"), 404, "enrollment_not_found")
    assert Enrollment.objects.filter(pk=theirs.pk).exists()
    assert api.get(URL).json()["pagination"]["total"] == 0
    assert api.get(URL, {"campaign_id": str(theirs.campaign_id)}).json()["enrollments"] == []
    assert api.get(URL, {"contact_id": str(theirs.contact_id)}).json()["enrollments"] == []
    assert [e["id"] for e in outsider_api.get(URL).json()["enrollments"]] == [theirs.pk]


def test_a_journeys_enrollments_are_not_on_this_surface(api, owner, contact):
    journey = journey_turn_on(
        journey=journey_create(
            account=owner,
            name="Onboarding",
            steps=[{"position": 1, "subject": "Hi", "body_html": "<p>Hi</p>", "delay_minutes": 0}],
            smtp_credentials=[
                {
                    "label": "Primary",
                    "smtp_host": "smtp.example.com",
                    "smtp_port": 587,
                    "smtp_username": "hello@example.com",
                    "smtp_password": "secret",
                    "daily_limit": 10,
                }
            ],
        )
    )
    theirs = enroll(journey, contact=contact)
    assert api.get(URL).json()["enrollments"] == []
    assert api.get(URL).json()["pagination"]["total"] == 0
    assert api.get(URL, {"completed": "false"}).json()["pagination"]["total"] == 0
    _error(api.get(f"{URL}/{theirs.pk}"), 404, "enrollment_not_found")
    _error(api.delete(f"{URL}/{theirs.pk}"), 404, "enrollment_not_found")


def test_without_a_key_every_method_is_the_native_401(anon_api):
    for response in (anon_api.get(URL), anon_api.post(URL, {}), anon_api.get(f"{URL}/1"), anon_api.delete(f"{URL}/1")):
        _error(response, 401, "unauthorized")


# --- list: order, fields, filters --------------------------------------------------------------------------


def test_the_list_is_most_recently_created_first_with_every_field(api, owner, campaign):
    second_campaign = _campaign(owner)
    made = [
        enroll(campaign, contact=ContactFactory(account=owner)),
        enroll(second_campaign, contact=ContactFactory(account=owner)),
        enroll(campaign, "sent", contact=ContactFactory(account=owner), completed_at=timezone.now()),
    ]
    body = api.get(URL).json()
    assert [e["id"] for e in body["enrollments"]] == [e.pk for e in reversed(made)]
    newest = body["enrollments"][0]
    assert newest == {
        "id": made[2].pk,
        "campaign_id": str(campaign.pk),
        "contact_id": str(made[2].contact_id),
        "enrolled_at": _stamp(made[2].created_at),
        "completed": True,
        "created_at": _stamp(made[2].created_at),
        "updated_at": _stamp(Enrollment.objects.get(pk=made[2].pk).updated_at),
    }
    assert body["pagination"] == {"page": 1, "limit": 25, "total": 3, "total_pages": 1}


def test_filters_by_campaign_and_contact(api, owner, campaign):
    other = _campaign(owner)
    contact = ContactFactory(account=owner)
    mine = enroll(campaign, contact=contact)
    elsewhere = enroll(other, contact=contact)
    stranger = enroll(campaign, contact=ContactFactory(account=owner))

    def ids(**params):
        body = api.get(URL, params).json()
        assert body["pagination"]["total"] == len(body["enrollments"])
        return [e["id"] for e in body["enrollments"]]

    assert ids(campaign_id=str(campaign.pk)) == [stranger.pk, mine.pk]
    assert ids(contact_id=str(contact.pk)) == [elsewhere.pk, mine.pk]
    assert ids(campaign_id=str(campaign.pk), contact_id=str(contact.pk)) == [mine.pk]
    assert ids(campaign_id=str(uuid.uuid4())) == []
    assert ids(campaign_id="camp_Kd93lftgZXGRbxqoj") == []
    assert ids(contact_id="not-a-uuid") == []


def test_completed_filter_is_true_when_nothing_is_left_to_send_or_the_sequence_stopped(api, owner, campaign):
    now = timezone.now()
    active = [
        enroll(campaign, "pending", contact=ContactFactory(account=owner)),
        enroll(campaign, "sent", contact=ContactFactory(account=owner)),
        enroll(campaign, "opened", contact=ContactFactory(account=owner)),
    ]
    finished = [
        enroll(campaign, "sent", contact=ContactFactory(account=owner), completed_at=now),
        enroll(campaign, "replied", contact=ContactFactory(account=owner)),
        enroll(campaign, "bounced", contact=ContactFactory(account=owner)),
        enroll(campaign, "pending", contact=ContactFactory(account=owner), unsubscribed_at=now),
    ]
    for value in ("true", "True", "1"):
        body = api.get(URL, {"completed": value}).json()
        assert sorted(e["id"] for e in body["enrollments"]) == sorted(e.pk for e in finished)
        assert all(e["completed"] for e in body["enrollments"]) and body["pagination"]["total"] == 4
    for value in ("false", "0"):
        body = api.get(URL, {"completed": value}).json()
        assert sorted(e["id"] for e in body["enrollments"]) == sorted(e.pk for e in active)
        assert not any(e["completed"] for e in body["enrollments"]) and body["pagination"]["total"] == 3
    error = _error(api.get(URL, {"completed": "maybe"}), 422, "validation_failed")
    assert list(error["details"]) == ["completed"]


# --- list: pagination --------------------------------------------------------------------------------------


def _many(owner, campaign, n):
    return [enroll(campaign, contact=ContactFactory(account=owner)) for _ in range(n)]


def test_pages_default_to_25_and_follow_page_and_limit(api, owner, campaign):
    made = list(reversed(_many(owner, campaign, 27)))
    first = api.get(URL).json()
    assert [e["id"] for e in first["enrollments"]] == [e.pk for e in made[:25]]
    assert first["pagination"] == {"page": 1, "limit": 25, "total": 27, "total_pages": 2}
    second = api.get(URL, {"page": 2}).json()
    assert [e["id"] for e in second["enrollments"]] == [e.pk for e in made[25:]]
    assert second["pagination"] == {"page": 2, "limit": 25, "total": 27, "total_pages": 2}
    by_ten = api.get(URL, {"page": 3, "limit": 10}).json()
    assert [e["id"] for e in by_ten["enrollments"]] == [e.pk for e in made[20:]]
    assert by_ten["pagination"] == {"page": 3, "limit": 10, "total": 27, "total_pages": 3}
    assert len(api.get(URL, {"limit": 1}).json()["enrollments"]) == 1
    assert len(api.get(URL, {"limit": 100}).json()["enrollments"]) == 27


def test_a_page_past_the_end_is_an_empty_list_with_correct_totals(api, owner, campaign):
    _many(owner, campaign, 3)
    for page in (2, 1000, 2_147_483_647):
        body = api.get(URL, {"page": page, "limit": 2 if page == 1000 else 25}).json()
        assert body["enrollments"] == []
        assert body["pagination"]["total"] == 3
    assert api.get(URL, {"page": 3, "limit": 2}).json()["pagination"] == {
        "page": 3,
        "limit": 2,
        "total": 3,
        "total_pages": 2,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "-1"),
        ("limit", "abc"),
        ("limit", "2.5"),
        ("limit", "1e2"),
        ("limit", "1180591620717411303424"),
        ("page", "0"),
        ("page", "-3"),
        ("page", "two"),
        ("page", "1.0"),
        ("page", "2147483648"),
        ("page", "1180591620717411303424"),
    ],
)
def test_an_out_of_range_or_malformed_limit_or_page_is_a_422_naming_it(api, name, value):
    error = _error(api.get(URL, {name: value}), 422, "validation_failed")
    assert list(error["details"]) == [name]


def test_the_queries_per_page_are_the_same_however_many_rows(api, owner, campaign, django_assert_num_queries):
    _many(owner, campaign, 3)
    api.get(URL)  # the key's first use of the day also stamps it; not part of the page's cost
    # key, total (the tally), the page's rows
    with django_assert_num_queries(3):
        assert len(api.get(URL, {"limit": 100}).json()["enrollments"]) == 3
    _many(owner, _campaign(owner), 60)
    with django_assert_num_queries(3):
        assert len(api.get(URL, {"limit": 100}).json()["enrollments"]) == 63
    for filters in ({"completed": "false"}, {"contact_id": str(ContactFactory(account=owner).pk)}):
        with django_assert_num_queries(3 if "completed" in filters else 2):  # nothing to read past a total of 0
            api.get(URL, {"limit": 100, **filters})
    with django_assert_num_queries(2):  # past the end: no page read
        api.get(URL, {"page": 50})


def test_total_is_summed_from_the_tally_without_counting_the_enrollments(
    api, owner, campaign, django_assert_num_queries
):
    _many(owner, campaign, 4)
    api.get(URL)  # the key's first use also stamps it
    with django_assert_num_queries(2) as captured:
        api.get(URL, {"page": 9})
    (total_sql,) = [q["sql"] for q in captured.captured_queries if "enrollmenttally" in q["sql"]]
    assert '"enrollments_enrollment"' not in total_sql


# --- the schema --------------------------------------------------------------------------------------------


def test_the_schema_documents_every_operation_status_and_parameter(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    listing = schema["paths"]["/api/v1/enrollments/"]
    detail = schema["paths"]["/api/v1/enrollments/{enrollment_id}/"]
    operations = [listing["get"], listing["post"], detail["get"], detail["delete"]]
    assert all(op["tags"] == ["Compat: v1 enrollments"] for op in operations)
    assert all("native envelope" in op["description"] for op in operations)
    assert set(listing["get"]["responses"]) == {"200", "401", "422"}
    assert set(listing["post"]["responses"]) == {"201", "400", "401", "404", "422"}
    assert set(detail["get"]["responses"]) == {"200", "401", "404"}
    assert set(detail["delete"]["responses"]) == {"204", "401", "404"}
    parameters = {p["name"]: p for p in listing["get"]["parameters"]}
    assert {"campaign_id", "contact_id", "completed", "limit", "page"} <= set(parameters)
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}
    assert parameters["page"]["schema"]["minimum"] == 1
    assert set(listing["post"]["requestBody"]["content"]) >= {"application/json", "application/x-www-form-urlencoded"}


def test_pages_merge_every_campaign_of_the_account_newest_first(api, owner, campaign):
    other = _campaign(owner)
    made = [enroll(campaign if n % 3 else other, contact=ContactFactory(account=owner)) for n in range(23)]
    newest_first = [e.pk for e in reversed(made)]
    seen = []
    for page in range(1, 6):
        body = api.get(URL, {"page": page, "limit": 5}).json()
        assert body["pagination"] == {"page": page, "limit": 5, "total": 23, "total_pages": 5}
        seen += [e["id"] for e in body["enrollments"]]
    assert seen == newest_first
    body = api.get(URL, {"campaign_id": str(other.pk), "page": 2, "limit": 3}).json()
    assert [e["id"] for e in body["enrollments"]] == [e.pk for e in reversed(made) if e.campaign_id == other.pk][3:6]


def test_completed_pages_are_cut_after_the_filter(api, owner, campaign):
    now = timezone.now()
    made = [
        enroll(campaign, "sent", contact=ContactFactory(account=owner), **({"completed_at": now} if n % 2 else {}))
        for n in range(9)
    ]
    finished = [e.pk for e in reversed(made) if e.completed_at]
    body = api.get(URL, {"completed": "true", "page": 2, "limit": 3}).json()
    assert [e["id"] for e in body["enrollments"]] == finished[3:]
    assert body["pagination"] == {"page": 2, "limit": 3, "total": 4, "total_pages": 2}


def test_on_a_completed_campaign_the_enrollment_is_scheduled_and_the_campaign_active_again(
    api, owner, contact, eager_tasks, django_capture_on_commit_callbacks
):
    campaign = _campaign(owner, status="completed")
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api, campaign.pk, contact.pk)
    assert response.status_code == 201
    assert ScheduledSend.objects.filter(enrollment_id=response.json()["id"]).count() == 2
    campaign.refresh_from_db()
    assert campaign.status == "active"


def test_options_answers_on_both_paths(api):
    assert api.options(URL).status_code == 200
    assert api.options(f"{URL}/1").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_of_one_contact_enroll_it_once(owner):
    campaign, contact = _campaign(owner), ContactFactory(account=owner)
    raw_key = api_key_create(account=owner)[1]
    barrier, answers = threading.Barrier(2), []

    def create():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        barrier.wait()
        try:
            answers.append(_post(client, campaign.pk, contact.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in answers) == [201, 422]
    assert [r.json()["error"]["code"] for r in answers if r.status_code == 422] == ["contact_already_enrolled"]
    assert Enrollment.objects.filter(campaign=campaign, contact=contact).count() == 1
