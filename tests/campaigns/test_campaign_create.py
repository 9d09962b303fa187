import pytest

from campaigns.models import Campaign, SequenceStep, SmtpCredential
from mailboxes.models import Mailbox

pytestmark = pytest.mark.django_db


def _nothing_written():
    return (
        not Campaign.objects.exists()
        and not SequenceStep.objects.exists()
        and not SmtpCredential.objects.exists()
        and not Mailbox.objects.exists()
    )


def _mailbox(campaign_id):
    """The mailbox the campaign's only credential sends through (the seed's settings live there)."""
    return SmtpCredential.objects.select_related("mailbox").get(campaign_id=campaign_id).mailbox


def _details(response):
    assert response.status_code == 422, response.json()
    body = response.json()["error"]
    assert body["code"] == "validation_failed"
    return body["details"]


def test_the_seed_example_payload_creates_a_pending_campaign(api, payload):
    response = api.post("/api/campaigns", payload, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "status"}
    assert body["status"] == "pending"
    campaign = Campaign.objects.get(pk=body["id"])
    assert [s.position for s in campaign.sequence_steps.all()] == [1, 2]
    assert campaign.smtp_credentials.count() == 1


def test_a_plain_unwrapped_body_is_accepted_too(api, payload):
    response = api.post("/api/campaigns", payload["campaign"], format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "pending"


def test_optional_fields_take_the_seed_defaults(api, payload):
    for key in ("min_wait_seconds", "max_wait_seconds", "verify_email_mx", "bounce_rate_threshold"):
        del payload["campaign"][key]
    response = api.post("/api/campaigns", payload, format="json")
    campaign = Campaign.objects.get(pk=response.json()["id"])
    assert campaign.outreach_id is None
    assert (campaign.min_wait_seconds, campaign.max_wait_seconds) == (120, 420)
    assert campaign.verify_email_mx is False
    assert campaign.bounce_rate_threshold == 8.0
    assert campaign.track_clicks is False


def test_every_seed_field_is_stored_as_sent(api, owner, payload):
    outreach = api.post("/api/outreaches", {"name": "Spring", "unique_contacts": True}, format="json").json()
    payload["campaign"].update(
        outreach_id=outreach["id"], min_wait_seconds=5, max_wait_seconds=9, bounce_rate_threshold=12.5
    )
    response = api.post("/api/campaigns", payload, format="json")
    campaign = Campaign.objects.get(pk=response.json()["id"])
    assert str(campaign.outreach_id) == outreach["id"]
    assert (campaign.min_wait_seconds, campaign.max_wait_seconds) == (5, 9)
    assert campaign.verify_email_mx is True
    assert campaign.bounce_rate_threshold == 12.5
    assert campaign.account == owner


def test_name_is_required_and_nothing_is_written(api, payload):
    del payload["campaign"]["name"]
    assert "name" in _details(api.post("/api/campaigns", payload, format="json"))
    assert _nothing_written()


def test_a_blank_name_is_refused(api, payload):
    payload["campaign"]["name"] = ""
    assert "name" in _details(api.post("/api/campaigns", payload, format="json"))
    assert _nothing_written()


@pytest.mark.parametrize("key", ["smtp_credentials", "sequence_steps"])
def test_at_least_one_credential_and_one_step_are_required(api, payload, key):
    payload["campaign"][key] = []
    assert key in _details(api.post("/api/campaigns", payload, format="json"))
    del payload["campaign"][key]
    assert key in _details(api.post("/api/campaigns", payload, format="json"))
    assert _nothing_written()


@pytest.mark.parametrize(
    ("positions", "step_errors"),
    [
        ([1, 1], {}),
        ([1, 3], {}),
        ([2, 3], {}),
        # 0 breaks the step's own rule too, reported at its path beside the list's rule
        ([0, 1], {"sequence_steps[0].position": ["Ensure this value is greater than or equal to 1."]}),
    ],
)
def test_step_positions_must_be_unique_and_contiguous_from_one(api, payload, positions, step_errors):
    for step, position in zip(payload["campaign"]["sequence_steps"], positions, strict=True):
        step["position"] = position
    details = _details(api.post("/api/campaigns", payload, format="json"))
    assert details == {
        **step_errors,
        "sequence_steps": [f"Step positions must be unique and contiguous from 1 (1..2); got {positions}."],
    }
    assert _nothing_written()


def test_positions_default_to_the_order_of_the_list(api, payload):
    for step in payload["campaign"]["sequence_steps"]:
        del step["position"]
    campaign_id = api.post("/api/campaigns", payload, format="json").json()["id"]
    steps = SequenceStep.objects.filter(campaign_id=campaign_id).order_by("position")
    assert [(s.position, s.delay_minutes) for s in steps] == [(1, 0), (2, 4320)]


def test_a_negative_delay_is_refused_with_the_path_of_the_step(api, payload):
    payload["campaign"]["sequence_steps"][1]["delay_minutes"] = -1
    details = _details(api.post("/api/campaigns", payload, format="json"))
    assert list(details) == ["sequence_steps[1].delay_minutes"]
    assert _nothing_written()


@pytest.mark.parametrize(("low", "high"), [(-1, 10), (500, 400)])
def test_waits_must_satisfy_zero_le_min_le_max(api, payload, low, high):
    payload["campaign"].update(min_wait_seconds=low, max_wait_seconds=high)
    details = _details(api.post("/api/campaigns", payload, format="json"))
    assert {"min_wait_seconds", "max_wait_seconds"} & set(details)
    assert _nothing_written()


def test_equal_min_and_max_waits_are_fine(api, payload):
    payload["campaign"].update(min_wait_seconds=0, max_wait_seconds=0)
    assert api.post("/api/campaigns", payload, format="json").status_code == 201


@pytest.mark.parametrize(("field", "value"), [("smtp_port", 0), ("smtp_port", 65536), ("imap_port", 70000)])
def test_ports_must_be_between_1_and_65535(api, payload, field, value):
    payload["campaign"]["smtp_credentials"][0][field] = value
    assert f"smtp_credentials[0].{field}" in _details(api.post("/api/campaigns", payload, format="json"))
    assert _nothing_written()


def test_daily_limit_must_be_at_least_one(api, payload):
    payload["campaign"]["smtp_credentials"][0]["daily_limit"] = 0
    assert "smtp_credentials[0].daily_limit" in _details(api.post("/api/campaigns", payload, format="json"))
    assert _nothing_written()


@pytest.mark.parametrize("value", [0, -1, 100.5])
def test_bounce_rate_threshold_must_be_above_0_and_at_most_100(api, payload, value):
    payload["campaign"]["bounce_rate_threshold"] = value
    assert "bounce_rate_threshold" in _details(api.post("/api/campaigns", payload, format="json"))
    assert _nothing_written()


def test_a_threshold_of_exactly_100_is_allowed(api, payload):
    payload["campaign"]["bounce_rate_threshold"] = 100
    assert api.post("/api/campaigns", payload, format="json").status_code == 201


def test_another_accounts_outreach_is_refused(api, outsider, payload):
    from campaigns.services import outreach_create

    foreign = outreach_create(account=outsider, name="Theirs")
    payload["campaign"]["outreach_id"] = str(foreign.pk)
    assert "outreach_id" in _details(api.post("/api/campaigns", payload, format="json"))
    payload["campaign"]["outreach_id"] = "not-a-uuid"
    assert "outreach_id" in _details(api.post("/api/campaigns", payload, format="json"))
    assert _nothing_written()


def test_an_unknown_merge_tag_is_refused_with_its_name(api, payload):
    payload["campaign"]["sequence_steps"][0]["subject"] = "Hi {{frist_name}}"
    payload["campaign"]["sequence_steps"][1]["body_html"] = "<p>{{ compnay | you }}</p>"
    details = _details(api.post("/api/campaigns", payload, format="json"))
    assert "{{frist_name}}" in details["sequence_steps[0].subject"][0]
    assert "{{ compnay | you }}" in details["sequence_steps[1].body_html"][0]
    assert _nothing_written()


def test_supported_merge_tags_custom_fields_and_fallbacks_are_accepted(api, payload):
    payload["campaign"]["sequence_steps"][0].update(
        subject="{{first_name|there}} {{last_name}}",
        body_html="<p>{{email}} {{company}} {{custom.plan}} {{ custom.Job Title | friend }}</p>",
        body_text="Hi {{first_name|there}}",
    )
    assert api.post("/api/campaigns", payload, format="json").status_code == 201


def test_unknown_fields_are_refused_by_name_at_every_level(api, payload):
    payload["campaign"]["sequence_steps"][0]["colour"] = "red"
    assert "sequence_steps[0].colour" in _details(api.post("/api/campaigns", payload, format="json"))
    payload["campaign"]["status"] = "active"
    assert "status" in _details(api.post("/api/campaigns", payload, format="json"))
    assert _nothing_written()


def test_wrong_types_are_reported_with_their_paths(api, payload):
    payload["campaign"]["smtp_credentials"][0]["smtp_port"] = "five"
    payload["campaign"]["verify_email_mx"] = "perhaps"
    details = _details(api.post("/api/campaigns", payload, format="json"))
    assert {"smtp_credentials[0].smtp_port", "verify_email_mx"} <= set(details)


def test_a_campaign_key_beside_other_keys_is_refused(api, payload):
    payload["name"] = "stray"
    assert "campaign" in _details(api.post("/api/campaigns", payload, format="json"))


def test_malformed_json_is_a_400_in_the_envelope(api):
    response = api.generic("POST", "/api/campaigns", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_smtp_security_defaults_from_the_port(api, payload):
    # Another sending address: two items with the same one would name the same mailbox twice.
    second = dict(payload["campaign"]["smtp_credentials"][0], smtp_port=465, label="Implicit TLS")
    second.update(smtp_username="ops@example.com", imap_username="ops@example.com")
    payload["campaign"]["smtp_credentials"].append(second)
    response = api.post("/api/campaigns", payload, format="json")
    assert response.status_code == 201, response.json()
    security = dict(
        SmtpCredential.objects.filter(campaign_id=response.json()["id"]).values_list(
            "mailbox__smtp_port", "mailbox__smtp_security"
        )
    )
    assert security == {587: "starttls", 465: "ssl"}


def test_from_email_defaults_to_an_address_like_username(api, payload):
    campaign_id = api.post("/api/campaigns", payload, format="json").json()["id"]
    assert _mailbox(campaign_id).email == "sales@example.com"


def test_without_a_sender_address_the_credential_is_accepted_but_not_ready(api, payload):
    payload["campaign"]["smtp_credentials"][0]["smtp_username"] = "api-user-42"
    campaign_id = api.post("/api/campaigns", payload, format="json").json()["id"]
    assert _mailbox(campaign_id).is_ready is False
    payload["campaign"]["smtp_credentials"][0]["from_email"] = "team@example.com"
    campaign_id = api.post("/api/campaigns", payload, format="json").json()["id"]
    assert _mailbox(campaign_id).is_ready is True


def test_a_from_email_that_is_not_an_address_is_refused(api, payload):
    payload["campaign"]["smtp_credentials"][0]["from_email"] = "team at example"
    assert "smtp_credentials[0].from_email" in _details(api.post("/api/campaigns", payload, format="json"))


def test_imap_fields_are_optional(api, payload):
    for key in ("imap_host", "imap_port", "imap_username", "imap_password"):
        del payload["campaign"]["smtp_credentials"][0][key]
    campaign_id = api.post("/api/campaigns", payload, format="json").json()["id"]
    assert _mailbox(campaign_id).imap_configured is False


def test_passwords_are_encrypted_at_rest_and_never_echoed(api, payload):
    response = api.post("/api/campaigns", payload, format="json")
    assert "SECRET" not in response.content.decode()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT smtp_password, imap_password FROM mailboxes_mailbox")
        stored = cursor.fetchone()
    assert all("SECRET" not in value for value in stored)
    mailbox = Mailbox.objects.get()
    assert mailbox.smtp_password == "smtp-pa55-SECRET"
    assert mailbox.imap_password == "imap-pa55-SECRET"
    shown = api.get(f"/api/campaigns/{response.json()['id']}")
    assert "SECRET" not in shown.content.decode()
    assert shown.json()["smtp_credentials"][0]["imap_configured"] is True


def test_create_requires_an_api_key(anon_api, payload):
    response = anon_api.post("/api/campaigns", payload, format="json")
    assert response.status_code == 401
    assert _nothing_written()
