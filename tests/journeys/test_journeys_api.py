"""/api/journeys: create, list, show, update, delete, turn on/off and the enrollments list, through HTTP."""

import copy
import datetime
import re
import uuid

import pytest
from django.utils import timezone

from campaigns.models import Campaign, SmtpCredential
from journeys.models import Journey, JourneyEnrollment
from journeys.services import journey_enroll
from tests.campaigns.factories import CampaignFactory
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

SMTP_SECRET = "smtp-pa55-SECRET"
IMAP_SECRET = "imap-pa55-SECRET"
BODY = {
    "name": "Onboarding",
    "steps": [
        {"position": 1, "subject": "Welcome {{first_name|there}}", "body_html": "<p>Hi</p>", "delay_minutes": 0},
        {
            "position": 2,
            "subject": "Day two",
            "body_html": "<p>Again</p>",
            "body_text": "Again",
            "delay_minutes": 1440,
        },
    ],
    "smtp_credentials": [
        {
            "label": "Primary",
            "smtp_host": "smtp.example.com",
            "smtp_port": 587,
            "smtp_username": "hello@example.com",
            "smtp_password": SMTP_SECRET,
            "daily_limit": 150,
            "imap_host": "imap.example.com",
            "imap_port": 993,
            "imap_username": "hello@example.com",
            "imap_password": IMAP_SECRET,
        }
    ],
}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _body(**changes):
    return {**copy.deepcopy(BODY), **changes}


def _create(api, **changes):
    response = api.post("/api/journeys", _body(**changes), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def created(api):
    return _create(api)


def _on(api, journey_id):
    response = api.post(f"/api/journeys/{journey_id}/turn_on")
    assert response.status_code == 200, response.json()
    return response.json()


def _error(response, status_code, code):
    assert response.status_code == status_code, response.json()
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]


# --- create --------------------------------------------------------------------------------------------------


def test_create_answers_201_with_the_draft_journey_its_steps_and_credentials_without_secrets(api):
    response = api.post("/api/journeys", BODY, format="json")
    assert response.status_code == 201
    body = response.json()
    assert SMTP_SECRET not in response.content.decode() and IMAP_SECRET not in response.content.decode()
    assert set(body) == {
        "id",
        "name",
        "state",
        "min_wait_seconds",
        "max_wait_seconds",
        "verify_email_mx",
        "bounce_rate_threshold",
        "track_clicks",
        "steps",
        "smtp_credentials",
        "created_at",
        "updated_at",
        "enrollments",
    }
    assert uuid.UUID(body["id"])
    assert (body["name"], body["state"]) == ("Onboarding", "draft")
    assert (body["min_wait_seconds"], body["max_wait_seconds"]) == (120, 420)
    assert (body["verify_email_mx"], body["bounce_rate_threshold"], body["track_clicks"]) == (False, 8.0, False)
    assert TIMESTAMP.match(body["created_at"]) and TIMESTAMP.match(body["updated_at"])
    assert body["enrollments"] == {"active": 0, "completed": 0, "exited": 0}
    assert [(s["position"], s["subject"], s["body_text"], s["delay_minutes"]) for s in body["steps"]] == [
        (1, "Welcome {{first_name|there}}", "", 0),
        (2, "Day two", "Again", 1440),
    ]
    (credential,) = body["smtp_credentials"]
    assert "smtp_password" not in credential and "imap_password" not in credential
    assert credential["imap_configured"] is True
    assert (credential["label"], credential["from_email"], credential["daily_limit"]) == (
        "Primary",
        "hello@example.com",
        150,
    )
    assert credential["smtp_security"] == "starttls"
    journey = Journey.objects.get(pk=body["id"])
    assert journey.kind == Campaign.Kind.JOURNEY and journey.state == "draft"
    stored = SmtpCredential.objects.select_related("mailbox").get(campaign=journey)
    assert credential["mailbox_id"] == str(stored.mailbox_id)
    assert (stored.mailbox.smtp_password, stored.mailbox.imap_password) == (SMTP_SECRET, IMAP_SECRET)  # never shown


def test_create_takes_the_options(api):
    body = _create(api, min_wait_seconds=30, max_wait_seconds=60, verify_email_mx=True, track_clicks=True)
    assert (body["min_wait_seconds"], body["max_wait_seconds"], body["verify_email_mx"], body["track_clicks"]) == (
        30,
        60,
        True,
        True,
    )


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"name": ""}, "name"),
        ({"steps": []}, "steps"),
        ({"smtp_credentials": []}, "smtp_credentials"),
        ({"steps": [{"position": 1, "body_html": "<p>x</p>"}]}, "steps[0].subject"),
        ({"steps": [{"position": 1, "subject": "Hi {{nickname}}", "body_html": "<p>x</p>"}]}, "steps[0].subject"),
        ({"steps": [{"position": 2, "subject": "Hi", "body_html": "<p>x</p>"}]}, "steps"),
        ({"steps": [*BODY["steps"][:1], {**BODY["steps"][1], "delay_minutes": "soon"}]}, "steps[1].delay_minutes"),
        ({"smtp_credentials": [{**BODY["smtp_credentials"][0], "smtp_port": "x"}]}, "smtp_credentials[0].smtp_port"),
        ({"smtp_credentials": [{**BODY["smtp_credentials"][0], "smtp_port": 0}]}, "smtp_credentials[0].smtp_port"),
        ({"min_wait_seconds": 600, "max_wait_seconds": 60}, None),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_create_refuses_invalid_input_with_422_keyed_by_path(api, changes, path):
    error = _error(api.post("/api/journeys", _body(**changes), format="json"), 422, "validation_failed")
    if path is not None:
        assert path in error["details"], error
    assert not Journey.objects.exists()


def test_create_without_a_name_names_it(api):
    body = _body()
    del body["name"]
    error = _error(api.post("/api/journeys", body, format="json"), 422, "validation_failed")
    assert error["details"] == {"name": ["This field is required."]}


def test_create_with_malformed_json_is_the_native_400(api):
    response = api.post("/api/journeys", "{", content_type="application/json")
    _error(response, 400, "malformed_json")


def test_the_api_needs_a_key(anon_api, created):
    _error(anon_api.get("/api/journeys"), 401, "unauthorized")
    _error(anon_api.get(f"/api/journeys/{created['id']}"), 401, "unauthorized")


# --- list ----------------------------------------------------------------------------------------------------


def test_list_is_a_bare_array_of_the_accounts_journeys_oldest_first(api, outsider_api, owner):
    first, second = _create(api, name="First"), _create(api, name="Second")
    _create(outsider_api, name="Theirs")
    CampaignFactory(account=owner, name="A campaign")  # a campaign is not a journey
    response = api.get("/api/journeys")
    assert response.status_code == 200
    body = response.json()
    assert [j["id"] for j in body] == [first["id"], second["id"]]
    assert set(body[0]) == {
        "id",
        "name",
        "state",
        "min_wait_seconds",
        "max_wait_seconds",
        "verify_email_mx",
        "bounce_rate_threshold",
        "track_clicks",
        "created_at",
        "updated_at",
    }
    assert first["id"] not in [c["id"] for c in api.get("/api/campaigns").json()]  # nor is a journey a campaign


def test_list_filters_by_state(api):
    draft, on = _create(api, name="Draft"), _create(api, name="On")
    _on(api, on["id"])
    assert [j["id"] for j in api.get("/api/journeys?state=on").json()] == [on["id"]]
    assert [j["id"] for j in api.get("/api/journeys?state=draft").json()] == [draft["id"]]
    assert api.get("/api/journeys?state=off").json() == []
    error = _error(api.get("/api/journeys?state=active"), 422, "validation_failed")
    assert error["details"] == {"state": ["Must be one of draft, on, off."]}


def test_list_pages_follow_the_link_with_constant_queries(api, django_assert_max_num_queries):
    ids = [_create(api, name=f"J{n}")["id"] for n in range(5)]
    seen, url = [], "/api/journeys?limit=2"
    while url:
        with django_assert_max_num_queries(2):  # key, page
            response = api.get(url)
        seen += [j["id"] for j in response.json()]
        link = response.headers.get("Link")
        url = re.match(r"<([^>]+)>", link).group(1) if link else None
    assert seen == ids


# --- retrieve ------------------------------------------------------------------------------------------------


def _enrollments(owner, journey_id, count):
    emails = [f"person{n}@example.com" for n in range(count)]
    for email in emails:
        ContactFactory(account=owner, email=email)
    journey_enroll(journey=Journey.objects.get(pk=journey_id), contact_email_addresses=emails)
    return list(JourneyEnrollment.objects.filter(campaign_id=journey_id).order_by("contact__email"))


def _finish(enrollment, how):
    now = timezone.now()
    sent = {"status": "sent", "sent_at": now - datetime.timedelta(hours=1)}
    changes = {
        "completed": {**sent, "completed_at": now},
        "bounced": {"status": "bounced", "bounced_at": now, "bounce_reason": "550 no such user"},
        "replied": {**sent, "status": "replied", "replied_at": now},
        "unsubscribed": {**sent, "unsubscribed_at": now},
    }[how]
    JourneyEnrollment.objects.filter(pk=enrollment.pk).update(**changes)


def test_retrieve_shows_the_journey_with_its_enrollments_counted_by_status(api, owner, created):
    _on(api, created["id"])
    enrollments = _enrollments(owner, created["id"], 6)
    _finish(enrollments[0], "completed")
    _finish(enrollments[1], "completed")
    _finish(enrollments[2], "bounced")
    _finish(enrollments[3], "replied")
    _finish(enrollments[4], "unsubscribed")
    response = api.get(f"/api/journeys/{created['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["enrollments"] == {"active": 1, "completed": 2, "exited": 3}
    assert body["state"] == "on"
    assert {k: v for k, v in body.items() if k not in ("state", "updated_at", "enrollments")} == {
        k: v for k, v in created.items() if k not in ("state", "updated_at", "enrollments")
    }
    assert SMTP_SECRET not in response.content.decode()


def test_retrieve_costs_the_same_queries_whatever_the_journeys_size(api, owner, django_assert_max_num_queries):
    small = _create(api)
    big = _create(
        api,
        steps=[{"position": n, "subject": f"S{n}", "body_html": "<p>x</p>"} for n in range(1, 6)],
        smtp_credentials=[{**BODY["smtp_credentials"][0], "smtp_username": f"s{n}@example.com"} for n in range(3)],
    )
    _on(api, big["id"])
    _enrollments(owner, big["id"], 20)
    for journey in (small, big):
        with django_assert_max_num_queries(5):  # key, journey, steps, credentials, counts
            assert api.get(f"/api/journeys/{journey['id']}").status_code == 200


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_unknown_malformed_and_other_accounts_ids_are_journey_not_found(api, outsider_api, owner, method):
    theirs = _create(outsider_api)
    campaign = CampaignFactory(account=owner)
    for journey_id in (uuid.uuid4(), "not-a-uuid", theirs["id"], campaign.pk):
        response = getattr(api, method)(f"/api/journeys/{journey_id}", {"name": "x"}, format="json")
        assert _error(response, 404, "journey_not_found")["message"] == "No journey with this id."
    assert Journey.objects.get(pk=theirs["id"]).name == "Onboarding"


@pytest.mark.parametrize(("method", "suffix"), [("post", "turn_on"), ("post", "turn_off"), ("get", "enrollments")])
def test_the_actions_answer_journey_not_found_for_other_accounts_journeys(api, outsider_api, method, suffix):
    theirs = _create(outsider_api)
    for journey_id in (uuid.uuid4(), "nope", theirs["id"]):
        _error(getattr(api, method)(f"/api/journeys/{journey_id}/{suffix}"), 404, "journey_not_found")
    assert Journey.objects.get(pk=theirs["id"]).state == "draft"


def test_paths_work_with_and_without_a_trailing_slash(api, created):
    assert api.get("/api/journeys/").status_code == 200
    assert api.get(f"/api/journeys/{created['id']}/").status_code == 200
    assert api.post(f"/api/journeys/{created['id']}/turn_on/").status_code == 200
    assert api.get(f"/api/journeys/{created['id']}/enrollments/").status_code == 200


# --- update and delete ---------------------------------------------------------------------------------------


def test_patch_changes_the_name_and_options(api, created):
    response = api.patch(
        f"/api/journeys/{created['id']}", {"name": "Renamed", "max_wait_seconds": 900, "track_clicks": True}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["max_wait_seconds"], body["track_clicks"]) == ("Renamed", 900, True)
    assert body["steps"] == created["steps"] and body["smtp_credentials"] == created["smtp_credentials"]
    assert Journey.objects.get(pk=created["id"]).name == "Renamed"


def test_patch_replaces_the_steps_as_a_whole_list(api, created):
    one, two = created["steps"]
    steps = [
        {"id": two["id"], "position": 1},
        {"position": 2, "subject": "Three", "body_html": "<p>3</p>", "delay_minutes": 60},
    ]
    response = api.patch(f"/api/journeys/{created['id']}", {"steps": steps}, format="json")
    assert response.status_code == 200, response.json()
    shown = response.json()["steps"]
    assert [(s["position"], s["subject"], s["delay_minutes"]) for s in shown] == [
        (1, "Day two", 1440),
        (2, "Three", 60),
    ]
    assert shown[0]["id"] == two["id"] and one["id"] not in [s["id"] for s in shown]


def test_patch_replaces_the_credentials_and_a_listed_one_keeps_its_passwords(api, created):
    (stored,) = created["smtp_credentials"]
    new = {**BODY["smtp_credentials"][0], "label": "Second", "smtp_username": "second@example.com"}
    body = {"smtp_credentials": [{"id": stored["id"], "label": "Renamed", "daily_limit": 50}, new]}
    response = api.patch(f"/api/journeys/{created['id']}", body, format="json")
    assert response.status_code == 200, response.json()
    shown = response.json()["smtp_credentials"]
    assert [(c["label"], c["daily_limit"]) for c in shown] == [("Renamed", 50), ("Second", 150)]
    assert SMTP_SECRET not in response.content.decode()
    kept = SmtpCredential.objects.select_related("mailbox").get(pk=stored["id"])
    assert str(kept.mailbox_id) == stored["mailbox_id"] == shown[0]["mailbox_id"]
    assert (kept.mailbox.smtp_password, kept.mailbox.imap_password, kept.mailbox.smtp_host) == (
        SMTP_SECRET,
        IMAP_SECRET,
        "smtp.example.com",
    )


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": ""}, "name"),
        ({"min_wait_seconds": -1}, "min_wait_seconds"),
        ({"steps": []}, "steps"),
        ({"steps": [{"position": 1, "body_html": "<p>x</p>"}]}, "steps[0].subject"),
        ({"steps": [{"id": "0b9c1b3e-5a4f-4d7e-9c2a-6f1e2d3c4b5a", "position": 1}]}, "steps[0].id"),
        ({"smtp_credentials": [{"smtp_port": "x"}]}, "smtp_credentials[0].smtp_port"),
        ({"smtp_credentials": [{"label": "No host"}]}, "smtp_credentials[0].smtp_host"),
        ({"state": "on"}, "state"),
    ],
)
def test_patch_refuses_invalid_input_with_422_keyed_by_path_and_changes_nothing(api, created, body, path):
    error = _error(api.patch(f"/api/journeys/{created['id']}", body, format="json"), 422, "validation_failed")
    assert path in error["details"], error
    shown = api.get(f"/api/journeys/{created['id']}").json()
    assert {k: v for k, v in shown.items() if k != "updated_at"} == {
        k: v for k, v in created.items() if k != "updated_at"
    }


def test_delete_answers_204_and_the_journey_is_gone(api, owner, created):
    _on(api, created["id"])
    _enrollments(owner, created["id"], 2)
    response = api.delete(f"/api/journeys/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    _error(api.get(f"/api/journeys/{created['id']}"), 404, "journey_not_found")
    assert not JourneyEnrollment.objects.exists()


# --- turn on / off -------------------------------------------------------------------------------------------


def test_turn_on_and_off_move_the_state_and_answer_the_journey(api, created):
    body = _on(api, created["id"])
    assert (body["id"], body["state"]) == (created["id"], "on")
    assert body["steps"] == created["steps"] and body["enrollments"] == {"active": 0, "completed": 0, "exited": 0}
    assert _on(api, created["id"])["state"] == "on"  # on stays on
    response = api.post(f"/api/journeys/{created['id']}/turn_off")
    assert response.status_code == 200 and response.json()["state"] == "off"
    assert api.post(f"/api/journeys/{created['id']}/turn_off").json()["state"] == "off"  # off stays off
    assert _on(api, created["id"])["state"] == "on"


def test_turning_off_a_draft_is_journey_not_on(api, created):
    error = _error(api.post(f"/api/journeys/{created['id']}/turn_off"), 422, "journey_not_on")
    assert error["message"] == "A draft journey is not on; there is nothing to turn off."
    assert Journey.objects.get(pk=created["id"]).state == "draft"


def test_a_journey_without_steps_or_credentials_cannot_be_turned_on(api, owner):
    bare = CampaignFactory(account=owner, kind=Campaign.Kind.JOURNEY, name="Bare")
    error = _error(api.post(f"/api/journeys/{bare.pk}/turn_on"), 422, "journey_incomplete")
    assert error["message"] == "The journey needs a step and an SMTP credential before it can be turned on."
    assert error["details"] == {"missing": ["a step", "an SMTP credential"]}
    assert Journey.objects.get(pk=bare.pk).state == "draft"


def test_turn_on_and_off_do_not_take_other_methods(api, created):
    _error(api.get(f"/api/journeys/{created['id']}/turn_on"), 405, "method_not_allowed")


# --- enrollments ---------------------------------------------------------------------------------------------


def test_enrollments_lists_every_enrollment_with_its_journey_status(api, owner, created):
    _on(api, created["id"])
    done, bounced, running = _enrollments(owner, created["id"], 3)
    _finish(done, "completed")
    _finish(bounced, "bounced")
    response = api.get(f"/api/journeys/{created['id']}/enrollments")
    assert response.status_code == 200
    body = {item["contact_email"]: item for item in response.json()}
    assert set(body) == {"person0@example.com", "person1@example.com", "person2@example.com"}
    item = body["person2@example.com"]
    assert set(item) == {
        "id",
        "journey_id",
        "contact_id",
        "contact_email",
        "status",
        "enrolled_at",
        "completed_at",
        "exited_at",
        "exit_reason",
        "round",
    }
    assert item["id"] == str(running.uuid) and item["journey_id"] == created["id"]
    assert item["contact_id"] == str(running.contact_id) and TIMESTAMP.match(item["enrolled_at"])
    assert (item["status"], item["completed_at"], item["exited_at"], item["exit_reason"], item["round"]) == (
        "active",
        None,
        None,
        None,
        1,
    )
    assert body["person0@example.com"]["status"] == "completed"
    assert TIMESTAMP.match(body["person0@example.com"]["completed_at"])
    exited = body["person1@example.com"]
    assert (exited["status"], exited["exit_reason"]) == ("exited", "bounced")
    assert TIMESTAMP.match(exited["exited_at"])


@pytest.mark.parametrize(
    ("status", "emails"),
    [
        ("active", ["person4@example.com"]),
        ("completed", ["person0@example.com"]),
        ("exited", ["person1@example.com", "person2@example.com", "person3@example.com"]),
    ],
)
def test_enrollments_filter_by_status(api, owner, created, status, emails):
    _on(api, created["id"])
    enrollments = _enrollments(owner, created["id"], 5)
    for enrollment, how in zip(enrollments, ["completed", "bounced", "replied", "unsubscribed"], strict=False):
        _finish(enrollment, how)
    response = api.get(f"/api/journeys/{created['id']}/enrollments?status={status}")
    assert response.status_code == 200
    assert sorted(item["contact_email"] for item in response.json()) == emails
    assert {item["status"] for item in response.json()} == {status}


def test_enrollments_refuse_an_unknown_status(api, created):
    error = _error(api.get(f"/api/journeys/{created['id']}/enrollments?status=sent"), 422, "validation_failed")
    assert error["details"] == {"status": ["Must be one of active, completed, exited."]}


def test_enrollments_show_every_round(api, owner, created):
    _on(api, created["id"])
    (first,) = _enrollments(owner, created["id"], 1)
    JourneyEnrollment.objects.filter(pk=first.pk).update(
        status="sent", sent_at=timezone.now() - datetime.timedelta(days=2), completed_at=timezone.now()
    )
    JourneyEnrollment.objects.filter(pk=first.pk).update(completed_at=timezone.now() - datetime.timedelta(hours=13))
    journey_enroll(journey=Journey.objects.get(pk=created["id"]), contact_email_addresses=["person0@example.com"])
    body = api.get(f"/api/journeys/{created['id']}/enrollments").json()
    assert [(item["round"], item["status"]) for item in body] == [(1, "completed"), (2, "active")]


def test_enrollments_pages_follow_the_link_with_constant_queries(api, owner, created, django_assert_max_num_queries):
    _on(api, created["id"])
    _enrollments(owner, created["id"], 7)
    seen, url = [], f"/api/journeys/{created['id']}/enrollments?limit=3"
    while url:
        with django_assert_max_num_queries(3):  # key, journey, page (contacts joined)
            response = api.get(url)
        assert response.status_code == 200
        seen += [item["id"] for item in response.json()]
        link = response.headers.get("Link")
        url = re.match(r"<([^>]+)>", link).group(1) if link else None
    assert len(seen) == len(set(seen)) == 7


# --- schema --------------------------------------------------------------------------------------------------


def test_the_schema_documents_the_journey_endpoints_and_their_errors(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert {"get", "post"} <= set(paths["/api/journeys/"])
    assert {"get", "patch", "delete"} <= set(paths["/api/journeys/{id}/"])
    assert "422" in paths["/api/journeys/{id}/turn_on/"]["post"]["responses"]
    examples = paths["/api/journeys/{id}/turn_on/"]["post"]["responses"]["422"]["content"]["application/json"]
    assert "journey_incomplete" in str(examples)
    assert "404" in paths["/api/journeys/{id}/enrollments/"]["get"]["responses"]
