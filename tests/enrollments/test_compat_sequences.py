"""GET /api/sequences/v1/enrollments, as compat-sequences-v1-enrollments.md documents it."""

import base64
import datetime
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign
from enrollments.models import EnrollmentSkip
from inbound.models import InboundMessage
from mailing.models import ScheduledSend
from tests.campaigns.factories import (
    CampaignFactory,
    SequenceStepFactory,
    SmtpCredentialFactory,
    enroll,
)
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

URL = "/api/sequences/v1/enrollments"


@pytest.fixture
def campaign(owner):
    return CampaignFactory(account=owner, name="Q3 outreach", status="active")


@pytest.fixture
def step(campaign):
    return SequenceStepFactory(campaign=campaign, position=1)


def _send(enrollment, step, status="scheduled", **fields):
    fields.setdefault("send_at", timezone.now())
    return ScheduledSend.objects.create(
        campaign=enrollment.campaign,
        enrollment=enrollment,
        step=step,
        smtp_credential=enrollment.smtp_credential,
        status=status,
        **fields,
    )


def _ids(response):
    assert response.status_code == 200, response.content
    return [e["id"] for e in response.json()["enrollments"]]


def _ts(value):
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_the_seed_curl_with_x_api_key_lists_every_documented_field(owner, owner_key, campaign, step):
    campaign.status = Campaign.Status.PAUSED
    campaign.save()
    credential = SmtpCredentialFactory(
        campaign=campaign, from_email="jsmith@example.com", from_name="J. Smith", disabled_at=timezone.now()
    )
    contact = ContactFactory(
        account=owner,
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        linkedin_url="https://www.linkedin.com/in/ada",
    )
    sent = timezone.now() - datetime.timedelta(days=1)
    enrollment = enroll(campaign, "replied", credential=credential, contact=contact, when=sent)
    _send(enrollment, step, "sent", sent_at=sent)
    reply = InboundMessage.objects.create(
        message_id="<r1@example.com>",
        mailbox=credential.mailbox,
        smtp_credential=credential,
        enrollment=enrollment,
        kind="reply",
        matched_by="headers",
        subject="Re: hello",
        received_at=sent + datetime.timedelta(hours=2),
    )
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=owner_key)
    response = client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"enrollments", "next_cursor"}
    assert body["next_cursor"] is None
    enrollment.refresh_from_db()
    assert body["enrollments"] == [
        {
            "id": str(enrollment.uuid),
            "created_at": _ts(enrollment.created_at),
            "updated_at": _ts(enrollment.updated_at),
            "sequence": {"id": str(campaign.pk), "name": "Q3 outreach", "is_paused": True},
            "person": {
                "id": str(contact.pk),
                "email": "ada@example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "linkedin_url": "https://www.linkedin.com/in/ada",
            },
            "mailbox": {  # the account's mailbox the credential sends through, not the campaign's use of it
                "id": str(credential.mailbox_id),
                "email": "jsmith@example.com",
                "display_name": "J. Smith",
                "is_paused": True,
                "is_unauthorized": False,
            },
            "reply_email_message": {
                "id": str(reply.pk),
                "subject": "Re: hello",
                "classifications": [],
                "received_at": _ts(reply.received_at),
            },
            "is_blocked": True,
            "is_bounced": False,
            "is_canceled": False,
            "is_excluded": False,
            "is_opted_out": False,
            "is_paused": True,
            "is_replied": True,
            "started_at": _ts(sent),
            "ended_at": _ts(sent),  # replied: the reply's stamp (the factory's `when`)
        }
    ]


def test_bearer_works_too_and_a_missing_or_unknown_key_is_401_in_the_vendors_shape(api, anon_api, campaign):
    enroll(campaign)
    assert len(_ids(api.get(URL))) == 1
    missing = anon_api.get(URL)
    assert missing.status_code == 401
    assert missing.json() == {"detail": "Not authenticated"}
    bad = APIClient()
    bad.credentials(HTTP_X_API_KEY="nope")
    assert bad.get(URL).status_code == 401
    assert "detail" in bad.get(URL).json()


def test_the_path_works_with_a_trailing_slash_and_other_methods_are_405(api, campaign):
    enroll(campaign)
    assert len(_ids(api.get(URL + "/"))) == 1
    response = api.post(URL, {}, format="json")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}


def test_statuses_follow_dispatch_sends_left_and_stops(api, campaign, step):
    now = timezone.now()
    draft = enroll(campaign)
    in_progress = enroll(campaign, "sent")
    _send(in_progress, step, "sent", sent_at=now)
    _send(in_progress, SequenceStepFactory(campaign=campaign, position=2), "scheduled")
    completed = enroll(campaign, "sent", completed_at=now)
    _send(completed, step, "sent", sent_at=now)
    bounced = enroll(campaign, "bounced")
    unsubscribed = enroll(campaign, unsubscribed_at=now)  # opted out before dispatch: nothing left
    canceled = enroll(campaign)
    _send(canceled, step, "canceled", last_error="stopped by an operator")

    def listed(*statuses):
        return set(_ids(api.get(URL, {"status": list(statuses)})))

    assert listed("DRAFT") == {str(draft.uuid)}
    assert listed("IN_PROGRESS") == {str(in_progress.uuid)}
    finished = {str(e.uuid) for e in (completed, bounced, unsubscribed, canceled)}
    assert listed("FINISHED") == finished
    assert listed("DRAFT", "FINISHED") == finished | {str(draft.uuid)}  # status repeats
    assert len(listed("DRAFT", "IN_PROGRESS", "FINISHED")) == 6

    shown = {e["id"]: e for e in api.get(URL).json()["enrollments"]}
    assert shown[str(draft.uuid)]["ended_at"] is None and shown[str(draft.uuid)]["started_at"] is None
    assert shown[str(in_progress.uuid)]["ended_at"] is None
    assert shown[str(in_progress.uuid)]["started_at"] == _ts(in_progress.sent_at)
    assert shown[str(completed.uuid)]["ended_at"] == _ts(now)
    assert shown[str(bounced.uuid)]["is_bounced"] is True
    assert shown[str(bounced.uuid)]["ended_at"] == _ts(bounced.bounced_at)
    assert shown[str(unsubscribed.uuid)]["is_opted_out"] is True
    assert shown[str(unsubscribed.uuid)]["ended_at"] == _ts(now)
    stopped = shown[str(canceled.uuid)]
    assert stopped["is_canceled"] is True and stopped["ended_at"] is not None
    assert not any(e["is_canceled"] for key, e in shown.items() if key != str(canceled.uuid))


def test_an_unknown_status_is_422_naming_it(api, campaign):
    response = api.get(URL, {"status": ["DRAFT", "DONE"]})
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["query", "status", 1]
    assert item["type"] == "enum" and item["input"] == "DONE"


def test_flags_mailbox_unauthorized_and_excluded(api, owner, campaign, step):
    credential = SmtpCredentialFactory(campaign=campaign)
    healthy = SmtpCredentialFactory(campaign=campaign)
    # Another campaign sending through the same mailbox: its failed sign-in is the mailbox's.
    other = CampaignFactory(account=owner, status="active")
    sharing = enroll(other, credential=SmtpCredentialFactory(campaign=other, mailbox=credential.mailbox))
    failing = enroll(campaign, credential=credential)
    _send(failing, step, "scheduled", attempts=1, last_error="535 5.7.8 Authentication credentials invalid")
    fine = enroll(campaign, credential=healthy)
    _send(fine, step, "scheduled", attempts=1, last_error="421 4.7.0 Try again later")
    skipped = enroll(campaign)
    EnrollmentSkip.objects.create(
        campaign=campaign, contact=skipped.contact, email=skipped.contact.email, kind="mx_invalid"
    )
    shown = {e["id"]: e for e in api.get(URL).json()["enrollments"]}
    assert shown[str(failing.uuid)]["mailbox"]["is_unauthorized"] is True
    assert shown[str(failing.uuid)]["mailbox"]["is_paused"] is False
    assert shown[str(sharing.uuid)]["mailbox"] == shown[str(failing.uuid)]["mailbox"]
    assert shown[str(fine.uuid)]["mailbox"]["is_unauthorized"] is False
    # without a from_name, the display name is the address
    assert shown[str(fine.uuid)]["mailbox"]["display_name"] == healthy.mailbox.email
    assert shown[str(skipped.uuid)]["is_excluded"] is True
    assert shown[str(skipped.uuid)]["mailbox"] is None
    assert shown[str(skipped.uuid)]["reply_email_message"] is None
    assert not shown[str(fine.uuid)]["is_excluded"]
    # a later successful send clears is_unauthorized
    _send(failing, SequenceStepFactory(campaign=campaign, position=2), "sent", sent_at=timezone.now())
    shown = {e["id"]: e for e in api.get(URL).json()["enrollments"]}
    assert shown[str(failing.uuid)]["mailbox"]["is_unauthorized"] is False
    assert shown[str(sharing.uuid)]["mailbox"]["is_unauthorized"] is False


def test_filters_by_sequence_person_and_mailbox(api, owner, campaign):
    other = CampaignFactory(account=owner)
    credential = SmtpCredentialFactory(campaign=campaign)
    a = enroll(campaign, credential=credential)
    b = enroll(other, contact=a.contact)
    c = enroll(other)
    assert _ids(api.get(URL, {"sequence_id": str(other.pk)})) == [str(b.uuid), str(c.uuid)]
    assert _ids(api.get(URL, {"person_id": str(a.contact.pk)})) == [str(a.uuid), str(b.uuid)]
    assert _ids(api.get(URL, {"mailbox_id": str(credential.mailbox_id)})) == [str(a.uuid)]
    # a credential's own id is not a mailbox's
    assert _ids(api.get(URL, {"mailbox_id": str(credential.pk)})) == []
    # the mailbox's enrollments in every campaign using it
    d = enroll(other, credential=SmtpCredentialFactory(campaign=other, mailbox=credential.mailbox))
    assert _ids(api.get(URL, {"mailbox_id": str(credential.mailbox_id)})) == [str(a.uuid), str(d.uuid)]
    assert _ids(api.get(URL, {"sequence_id": str(other.pk), "person_id": str(a.contact.pk)})) == [str(b.uuid)]
    assert _ids(api.get(URL, {"sequence_id": str(uuid.uuid4())})) == []
    # a person's enrollments page too
    first = api.get(URL, {"person_id": str(a.contact.pk), "limit": 1}).json()
    assert [e["id"] for e in first["enrollments"]] == [str(a.uuid)] and first["next_cursor"]
    rest = api.get(URL, {"person_id": str(a.contact.pk), "limit": 1, "cursor": first["next_cursor"]}).json()
    assert [e["id"] for e in rest["enrollments"]] == [str(b.uuid)] and rest["next_cursor"] is None
    assert _ids(api.get(URL, {"mailbox_id": str(uuid.uuid4())})) == []


@pytest.mark.parametrize("name", ["sequence_id", "person_id", "mailbox_id"])
def test_a_malformed_uuid_is_422_naming_the_parameter(api, name):
    response = api.get(URL, {name: "not-a-uuid"})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"type": "uuid_parsing", "loc": ["query", name], "msg": "Input should be a valid UUID", "input": "not-a-uuid"}
    ]


def test_another_accounts_ids_are_absent_and_its_enrollments_never_listed(api, outsider_api, owner, outsider, campaign):
    mine = enroll(campaign, credential=SmtpCredentialFactory(campaign=campaign))
    theirs_campaign = CampaignFactory(account=outsider)
    theirs = enroll(theirs_campaign, credential=SmtpCredentialFactory(campaign=theirs_campaign))
    assert _ids(api.get(URL)) == [str(mine.uuid)]
    assert _ids(outsider_api.get(URL)) == [str(theirs.uuid)]
    for name, value in (
        ("sequence_id", theirs_campaign.pk),
        ("person_id", theirs.contact.pk),
        ("mailbox_id", theirs.smtp_credential.mailbox_id),
    ):
        assert _ids(api.get(URL, {name: str(value)})) == []


def test_journey_enrollments_are_not_listed(api, owner, campaign):
    journey = CampaignFactory(account=owner, kind=Campaign.Kind.JOURNEY)
    enroll(journey)
    mine = enroll(campaign)
    assert _ids(api.get(URL)) == [str(mine.uuid)]


def test_updated_bounds_are_inclusive_both_ways_with_a_shown_value(api, campaign):
    rows = [enroll(campaign) for _ in range(3)]
    shown = [e["updated_at"] for e in api.get(URL).json()["enrollments"]]
    assert len(set(shown)) == 3
    assert _ids(api.get(URL, {"updated_after": shown[1]})) == [str(r.uuid) for r in rows[1:]]
    assert _ids(api.get(URL, {"updated_before": shown[1]})) == [str(r.uuid) for r in rows[:2]]
    assert _ids(api.get(URL, {"updated_after": shown[1], "updated_before": shown[1]})) == [str(rows[1].uuid)]
    # another offset names the same instant
    at = datetime.datetime.fromisoformat(shown[1].replace("Z", "+00:00"))
    shifted = at.astimezone(datetime.timezone(datetime.timedelta(hours=2))).isoformat()
    assert _ids(api.get(URL, {"updated_after": shifted, "updated_before": shifted})) == [str(rows[1].uuid)]


@pytest.mark.parametrize("value", ["yesterday", "2023-11-07", "2023-11-07T05:31:56", "2023-13-07T05:31:56Z", ""])
@pytest.mark.parametrize("name", ["updated_after", "updated_before"])
def test_a_malformed_date_bound_is_422_naming_it(api, name, value):
    response = api.get(URL, {name: value})
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["query", name] and item["input"] == value


def test_pages_follow_next_cursor_to_a_null_with_no_empty_page_after(api, campaign):
    rows = [str(enroll(campaign).uuid) for _ in range(4)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get(URL, params).json()
        pages += 1
        assert body["enrollments"], "no empty page"
        seen += [e["id"] for e in body["enrollments"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == rows and pages == 2
    five = api.get(URL, {"limit": 3}).json()
    assert len(five["enrollments"]) == 3 and five["next_cursor"]
    rest = api.get(URL, {"limit": 3, "cursor": five["next_cursor"]}).json()
    assert [e["id"] for e in rest["enrollments"]] == rows[3:] and rest["next_cursor"] is None


def test_an_empty_account_answers_an_empty_page(api):
    assert api.get(URL).json() == {"enrollments": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("value", "kind"),
    [("0", "greater_than_equal"), ("101", "less_than_equal"), ("-1", "greater_than_equal"), ("ten", "int_parsing")],
)
def test_limit_outside_1_to_100_is_422(api, value, kind):
    response = api.get(URL, {"limit": value})
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["query", "limit"] and item["type"] == kind


def test_limit_100_is_accepted(api, campaign):
    enroll(campaign)
    assert len(_ids(api.get(URL, {"limit": 100}))) == 1


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!not-base64",
        _b64(b"not json"),
        _b64(b'{"id": 1}'),
        _b64(b'["abc"]'),
        _b64(b"[1, 2]"),
        _b64(b"[99999999999999999999999]"),
        _b64(b"[-5]"),
        _b64(b"[null]"),
    ],
)
def test_a_tampered_cursor_is_422_not_500(api, campaign, cursor):
    enroll(campaign)
    response = api.get(URL, {"cursor": cursor})
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["query", "cursor"]


def test_every_invalid_parameter_is_reported_at_once(api):
    response = api.get(URL, {"limit": "0", "sequence_id": "x", "status": "NOPE"})
    assert response.status_code == 422
    assert {tuple(i["loc"][:2]) for i in response.json()["detail"]} == {
        ("query", "limit"),
        ("query", "sequence_id"),
        ("query", "status"),
    }


def test_a_page_costs_the_same_queries_however_many_rows_and_nested_objects(
    api, owner, campaign, step, django_assert_num_queries
):
    def seed(n):
        for i in range(n):
            other = CampaignFactory(account=owner)
            credential = SmtpCredentialFactory(campaign=other)
            enrollment = enroll(other, "sent", credential=credential)
            _send(enrollment, SequenceStepFactory(campaign=other, position=1), "sent", sent_at=timezone.now())
            InboundMessage.objects.create(
                message_id=f"<q{n}-{i}@example.com>",
                mailbox=credential.mailbox,
                smtp_credential=credential,
                enrollment=enrollment,
                kind="reply",
                matched_by="headers",
                received_at=timezone.now(),
            )

    seed(2)
    api.get(URL)  # the key's first use
    # key, campaigns, the page's keys, the page, replies, mailboxes' last attempts
    with django_assert_num_queries(6):
        assert len(_ids(api.get(URL))) == 2
    seed(20)
    with django_assert_num_queries(6):
        assert len(_ids(api.get(URL))) == 22


def test_the_schema_documents_the_surface_under_its_tag(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/sequences/v1/enrollments/"]["get"]
    assert operation["tags"] == ["Compat: sequences v1"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == {
        "cursor",
        "limit",
        "sequence_id",
        "person_id",
        "mailbox_id",
        "status",
        "updated_after",
        "updated_before",
    }
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 100)
    assert {"200", "401", "405", "422"} <= set(operation["responses"])
    assert "FastAPI" in operation["description"]
