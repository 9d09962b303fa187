"""The campaign admin as an operator uses it: what the pages show, and what a save writes.

The forms check with the services' own check and the admin saves through
`campaign_create` / `campaign_update`, so refusals are the API's, shown on
the page next to the field they are about.

A campaign's credentials choose one of its account's mailboxes (with a
label and this campaign's own daily cap); the mailbox's settings and
passwords are edited on the mailbox's page (tests/mailboxes/test_admin.py).
"""

import copy
import html as htmllib

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db import connection

import campaigns.admin
from campaigns.models import Campaign, Outreach, SequenceStep, SmtpCredential
from campaigns.services import campaign_update, outreach_create
from mailboxes.models import Mailbox
from mailing.models import ScheduledSend
from tests.mailboxes.factories import MailboxFactory

from .conftest import SEED_PAYLOAD
from .factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory, enroll

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("op", "op@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


@pytest.fixture
def campaign(owner):
    campaign = CampaignFactory(account=owner, name="Admin campaign")
    SequenceStepFactory(campaign=campaign, position=1)
    SmtpCredentialFactory(
        campaign=campaign,
        smtp_password="smtp-SECRET-value",
        imap_host="imap.example.com",
        imap_port=993,
        imap_username="u",
        imap_password="imap-SECRET-value",
    )
    enroll(campaign, "sent", credential=campaign.smtp_credentials.get())
    enroll(campaign, "bounced", credential=campaign.smtp_credentials.get())
    return campaign


def _stored_ciphertexts():
    with connection.cursor() as cursor:
        cursor.execute("SELECT smtp_password, imap_password FROM mailboxes_mailbox")
        return [value for row in cursor.fetchall() for value in row if value]


def _secrets(mailbox):
    mailbox.refresh_from_db()
    return (mailbox.smtp_password, mailbox.imap_password)


def _change_form_data(campaign, **credential_changes):
    step = campaign.sequence_steps.get()
    credential = campaign.smtp_credentials.get()
    data = {
        "name": campaign.name,
        "outreach": "",
        "min_wait_seconds": campaign.min_wait_seconds,
        "max_wait_seconds": campaign.max_wait_seconds,
        "bounce_rate_threshold": campaign.bounce_rate_threshold,
        "sequence_steps-TOTAL_FORMS": 1,
        "sequence_steps-INITIAL_FORMS": 1,
        "sequence_steps-MIN_NUM_FORMS": 0,
        "sequence_steps-MAX_NUM_FORMS": 1000,
        "sequence_steps-0-id": step.pk,
        "sequence_steps-0-campaign": campaign.pk,
        "sequence_steps-0-position": step.position,
        "sequence_steps-0-delay_minutes": step.delay_minutes,
        "sequence_steps-0-subject": step.subject,
        "sequence_steps-0-body_html": step.body_html,
        "sequence_steps-0-body_text": step.body_text,
        "smtp_credentials-TOTAL_FORMS": 1,
        "smtp_credentials-INITIAL_FORMS": 1,
        "smtp_credentials-MIN_NUM_FORMS": 0,
        "smtp_credentials-MAX_NUM_FORMS": 1000,
    }
    fields = {
        "id": credential.pk,
        "campaign": campaign.pk,
        "mailbox": credential.mailbox_id,
        "label": credential.label,
        "campaign_daily_limit": credential.campaign_daily_limit or "",
        **credential_changes,
    }
    data.update({f"smtp_credentials-0-{key}": value for key, value in fields.items()})
    return data


def test_change_page_shows_stats_and_never_a_secret(staff_client, campaign):
    response = staff_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Totals" in html and "bounce_rate: 50.0%" in html
    assert "SECRET" not in html
    for ciphertext in _stored_ciphertexts():
        assert ciphertext not in html
    # The credential chooses a mailbox; its passwords are edited on the mailbox's page only.
    assert 'name="smtp_credentials-0-mailbox"' in html and 'name="smtp_credentials-0-campaign_daily_limit"' in html
    assert "new_smtp_password" not in html and "new_imap_password" not in html and 'type="password"' not in html
    assert "Enabled, 200 a day" in html  # the mailbox's state beside its row


def test_changing_the_label_and_the_cap_keeps_the_mailbox_and_its_secrets(staff_client, campaign):
    credential = SmtpCredential.objects.get(campaign=campaign)
    data = _change_form_data(campaign, label="Renamed", campaign_daily_limit=25)
    response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    changed = SmtpCredential.objects.get(campaign=campaign)
    assert (changed.pk, changed.mailbox_id) == (credential.pk, credential.mailbox_id)
    assert (changed.label, changed.campaign_daily_limit) == ("Renamed", 25)
    assert _secrets(changed.mailbox) == ("smtp-SECRET-value", "imap-SECRET-value")
    assert changed.mailbox.daily_limit == 200  # the mailbox's shared limit is not the campaign's cap


def test_a_posted_password_field_changes_nothing_the_campaign_page_has_none(staff_client, campaign):
    data = _change_form_data(campaign, new_smtp_password="rotated-pw", new_imap_password="rotated-imap")
    assert staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data).status_code == 302
    mailbox = SmtpCredential.objects.get(campaign=campaign).mailbox
    assert _secrets(mailbox) == ("smtp-SECRET-value", "imap-SECRET-value")


def test_the_admin_refuses_an_unknown_merge_tag(staff_client, campaign):
    data = _change_form_data(campaign)
    data["sequence_steps-0-subject"] = "Hi {{frist_name}}"
    response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert response.status_code == 200
    assert "{{frist_name}}" in response.content.decode()
    assert campaign.sequence_steps.get().subject != "Hi {{frist_name}}"


def test_changelist_filters_by_status_and_searches_by_name(staff_client, owner):
    CampaignFactory(account=owner, name="Spring push", status="active")
    CampaignFactory(account=owner, name="Autumn push", status="paused")
    html = staff_client.get("/admin/campaigns/campaign/?status__exact=active").content.decode()
    assert "Spring push" in html and "Autumn push" not in html
    html = staff_client.get("/admin/campaigns/campaign/?q=autumn").content.decode()
    assert "Autumn push" in html and "Spring push" not in html


def test_deleting_in_the_admin_cascades(staff_client, campaign):
    response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not SmtpCredential.objects.exists()


def test_outreach_admin_lists_outreaches(staff_client, owner):
    outreach_create(account=owner, name="Big outreach")
    assert "Big outreach" in staff_client.get("/admin/campaigns/outreach/?q=big").content.decode()


def test_outreach_admin_adds_changes_and_deletes_through_the_services(staff_client, owner):
    response = staff_client.post(
        "/admin/campaigns/outreach/add/", {"account": owner.pk, "name": "Spring", "_continue": "1"}
    )
    outreach = Outreach.objects.get(name="Spring")
    assert response["Location"] == f"/admin/campaigns/outreach/{outreach.pk}/change/"
    assert (outreach.account, outreach.unique_contacts) == (owner, False)
    linked = CampaignFactory(account=owner, outreach=outreach)

    url = f"/admin/campaigns/outreach/{outreach.pk}/change/"
    assert 'name="account"' not in staff_client.get(url).content.decode()  # chosen once, at creation
    assert staff_client.post(url, {"name": "Summer", "unique_contacts": "on"}).status_code == 302
    outreach.refresh_from_db()
    assert (outreach.name, outreach.unique_contacts) == ("Summer", True)

    assert staff_client.post(f"/admin/campaigns/outreach/{outreach.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Outreach.objects.filter(pk=outreach.pk).exists()
    linked.refresh_from_db()
    assert linked.outreach_id is None  # its campaigns stay, unlinked


# --- Adding and changing go through the services -------------------------------------------

ADD_URL = "/admin/campaigns/campaign/add/"
STEP = {"position": 1, "delay_minutes": 0, "subject": "Hi {{first_name}}", "body_html": "<p>Hello</p>", "body_text": ""}
EMPTY_CREDENTIAL = {"mailbox": "", "label": "", "campaign_daily_limit": ""}


def _credential_row(mailbox, **changes):
    """An inline row choosing `mailbox`, as the operator fills it in."""
    return {"mailbox": mailbox.pk, "label": "Primary", "campaign_daily_limit": "", **changes}


@pytest.fixture
def mailbox(owner):
    """The account's mailbox an operator chooses on the campaign page (made on the mailbox's own page)."""
    return MailboxFactory(
        account=owner,
        email="sales@example.com",
        smtp_username="sales@example.com",
        smtp_password="typed-SECRET-pw",
        imap_host="imap.example.com",
        imap_username="sales@example.com",
        imap_password="imap-typed-SECRET",
    )


def _inline(prefix, rows, *, initial=0):
    data = {
        f"{prefix}-TOTAL_FORMS": len(rows),
        f"{prefix}-INITIAL_FORMS": initial,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{key}": value for key, value in row.items() if value is not None})
    return data


def _add_form_data(account, *, steps=(STEP,), credentials, **campaign):
    data = {
        "account": account.pk,
        "name": "From the admin",
        "outreach": "",
        "min_wait_seconds": 120,
        "max_wait_seconds": 420,
        "bounce_rate_threshold": 8.0,
        **campaign,
    }
    data.update(_inline("sequence_steps", steps))
    data.update(_inline("smtp_credentials", credentials))
    return data


def _page_errors(response):
    """What the re-rendered page shows, by place: the campaign's fields, then each inline's list and forms."""
    assert response.status_code == 200, response
    steps, credentials = response.context["inline_admin_formsets"]
    return {
        "campaign": dict(response.context["adminform"].form.errors),
        "sequence_steps": list(steps.formset.non_form_errors()),
        "sequence_steps[]": [dict(form.errors) for form in steps.formset.forms],
        "smtp_credentials": list(credentials.formset.non_form_errors()),
        "smtp_credentials[]": [dict(form.errors) for form in credentials.formset.forms],
    }


def _shown(response, message):
    return htmllib.escape(message) in response.content.decode()


def _api_details(api, **changes):
    body = copy.deepcopy(SEED_PAYLOAD)
    body["campaign"].update(changes)
    response = api.post("/api/campaigns", body, format="json")
    assert response.status_code == 422, response.json()
    return response.json()["error"]["details"]


def test_an_operator_adds_a_campaign_with_its_steps_and_credentials_inline(staff_client, owner, mailbox):
    page = staff_client.get(ADD_URL).content.decode()
    assert 'name="sequence_steps-0-subject"' in page and 'name="smtp_credentials-0-mailbox"' in page
    assert f'value="{mailbox.pk}"' in page and "sales@example.com (Owner Inc)" in page  # chosen with its account
    assert "typed-SECRET" not in page

    second = {**STEP, "position": 2, "delay_minutes": 4320, "subject": "Re: Hi"}
    row = _credential_row(mailbox, campaign_daily_limit=40)
    data = {**_add_form_data(owner, steps=(STEP, second), credentials=(row,)), "_continue": "1"}
    response = staff_client.post(ADD_URL, data)
    assert response.status_code == 302, _page_errors(response)

    campaign = Campaign.objects.get(name="From the admin")
    assert response["Location"] == f"/admin/campaigns/campaign/{campaign.pk}/change/"  # the one the service made
    assert (campaign.account, campaign.status) == (owner, "pending")
    assert [(s.position, s.delay_minutes, s.subject) for s in campaign.sequence_steps.all()] == [
        (1, 0, "Hi {{first_name}}"),
        (2, 4320, "Re: Hi"),
    ]
    credential = campaign.smtp_credentials.get()
    assert (credential.mailbox_id, credential.label, credential.campaign_daily_limit) == (mailbox.pk, "Primary", 40)
    # The mailbox is used as it is: no copy, its secrets untouched.
    assert Mailbox.objects.filter(account=owner).count() == 1
    assert _secrets(mailbox) == ("typed-SECRET-pw", "imap-typed-SECRET")
    assert all("SECRET" not in value for value in _stored_ciphertexts())
    change_page = staff_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "typed-SECRET" not in change_page
    history = LogEntry.objects.get(object_id=str(campaign.pk)).get_change_message()
    assert "Added sequence step" in history and "Added SMTP credential" in history


def test_adding_without_a_step_or_a_credential_shows_the_apis_messages_and_writes_nothing(staff_client, owner):
    # The add page's empty inline forms, left untouched, are no items at all.
    empty_step = {"position": "", "delay_minutes": 0, "subject": "", "body_html": "", "body_text": ""}
    response = staff_client.post(ADD_URL, _add_form_data(owner, steps=(empty_step,), credentials=(EMPTY_CREDENTIAL,)))
    errors = _page_errors(response)
    assert errors["sequence_steps"] == ["At least one sequence step is required."]
    assert errors["smtp_credentials"] == ["At least one SMTP credential is required."]
    assert _shown(response, "At least one sequence step is required.")
    assert not Campaign.objects.exists() and not SequenceStep.objects.exists()


@pytest.mark.parametrize("positions", [[1, 3], [1, 1], [2, 3]])
def test_step_positions_are_refused_with_the_same_message_as_the_api(staff_client, api, owner, mailbox, positions):
    steps = [{**STEP, "position": p} for p in positions]
    api_steps = [{"position": p, "subject": "Hi", "body_html": "<p>x</p>"} for p in positions]
    (message,) = _api_details(api, sequence_steps=api_steps)["sequence_steps"]

    response = staff_client.post(ADD_URL, _add_form_data(owner, steps=steps, credentials=(_credential_row(mailbox),)))
    errors = _page_errors(response)
    assert errors["sequence_steps"] == [message]
    assert errors["sequence_steps[]"] == [{}, {}]
    assert _shown(response, message)
    assert not Campaign.objects.exists()


def test_another_accounts_mailbox_is_refused_on_its_field_with_the_apis_message(staff_client, api, owner, outsider):
    theirs = MailboxFactory(account=outsider, smtp_password="their-SECRET-pw")
    (message,) = _api_details(api, smtp_credentials=[{"mailbox_id": str(theirs.pk)}])["smtp_credentials[0].mailbox_id"]

    response = staff_client.post(ADD_URL, _add_form_data(owner, credentials=(_credential_row(theirs),)))
    errors = _page_errors(response)
    assert errors["smtp_credentials[]"] == [{"mailbox": [message]}]
    assert errors["campaign"] == {} and errors["sequence_steps[]"] == [{}]
    assert _shown(response, message)
    assert "their-SECRET-pw" not in response.content.decode()
    assert not Campaign.objects.exists() and not SmtpCredential.objects.exists()


def test_a_campaign_cap_below_one_is_refused_on_its_field_with_the_apis_message(staff_client, api, owner, mailbox):
    (message,) = _api_details(api, smtp_credentials=[{"mailbox_id": str(mailbox.pk), "campaign_daily_limit": 0}])[
        "smtp_credentials[0].campaign_daily_limit"
    ]
    row = _credential_row(mailbox, campaign_daily_limit=0)
    response = staff_client.post(ADD_URL, _add_form_data(owner, credentials=(row,)))
    assert _page_errors(response)["smtp_credentials[]"] == [{"campaign_daily_limit": [message]}]
    assert response.content.decode().count(htmllib.escape(message)) == 1
    assert not Campaign.objects.exists()


def test_two_rows_choosing_the_same_mailbox_are_refused_with_the_apis_message(staff_client, api, owner, mailbox):
    same = {"mailbox_id": str(mailbox.pk)}
    (message,) = _api_details(api, smtp_credentials=[same, same])["smtp_credentials[1].mailbox_id"]

    rows = (_credential_row(mailbox), _credential_row(mailbox, label="Again"))
    errors = _page_errors(staff_client.post(ADD_URL, _add_form_data(owner, credentials=rows)))
    assert errors["smtp_credentials[]"] == [{}, {"mailbox": [message]}]
    assert not Campaign.objects.exists()


def test_a_wait_range_problem_is_shown_once_on_its_field(staff_client, owner, mailbox):
    data = _add_form_data(owner, credentials=(_credential_row(mailbox),), min_wait_seconds=500, max_wait_seconds=400)
    response = staff_client.post(ADD_URL, data)
    errors = _page_errors(response)
    assert errors["campaign"] == {"max_wait_seconds": ["Must be greater than or equal to min_wait_seconds."]}
    assert response.content.decode().count("Must be greater than or equal to min_wait_seconds.") == 1
    assert not Campaign.objects.exists()


def test_another_accounts_outreach_is_refused_on_the_outreach_field(staff_client, owner, outsider, mailbox):
    theirs = outreach_create(account=outsider, name="Theirs")
    response = staff_client.post(
        ADD_URL, _add_form_data(owner, credentials=(_credential_row(mailbox),), outreach=theirs.pk)
    )
    assert _page_errors(response)["campaign"] == {"outreach": ["No outreach with this id."]}
    assert not Campaign.objects.exists()


def test_a_new_row_without_a_mailbox_is_refused_on_the_mailbox_field_alone(staff_client, campaign):
    data = _change_form_data(campaign)
    data.update({f"smtp_credentials-1-{key}": value for key, value in {**EMPTY_CREDENTIAL, "label": "Second"}.items()})
    data["smtp_credentials-TOTAL_FORMS"] = 2
    response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    errors = _page_errors(response)
    # Only the missing choice: the page has no mailbox settings for anything else to be about.
    assert errors["smtp_credentials[]"] == [{}, {"mailbox": ["This field is required."]}]
    assert errors["smtp_credentials"] == []
    assert campaign.smtp_credentials.count() == 1 and Mailbox.objects.count() == 1


def test_a_new_row_adds_a_credential_on_another_mailbox_of_the_account(staff_client, campaign, owner):
    other = MailboxFactory(account=owner)
    data = _change_form_data(campaign)
    data.update({f"smtp_credentials-1-{key}": value for key, value in _credential_row(other, label="Second").items()})
    data["smtp_credentials-TOTAL_FORMS"] = 2
    response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert response.status_code == 302, _page_errors(response)
    (stored, added) = campaign.smtp_credentials.order_by("created_at")
    assert (added.label, added.mailbox_id) == ("Second", other.pk)
    assert stored.mailbox_id != other.pk
    assert Mailbox.objects.count() == 2


def test_adding_without_choosing_an_account_shows_the_field_and_writes_nothing(staff_client, owner, mailbox):
    data = _add_form_data(owner, credentials=(_credential_row(mailbox),))
    data["account"] = ""
    errors = _page_errors(staff_client.post(ADD_URL, data))
    assert errors["campaign"] == {"account": ["This field is required."]}
    assert not Campaign.objects.exists()


def test_swapping_two_steps_keeps_both_steps_and_what_is_scheduled_for_them(staff_client, campaign):
    data = _change_form_data(campaign)
    first = campaign.sequence_steps.get()
    second = SequenceStepFactory(campaign=campaign, position=2, subject="Second")
    enrollment = campaign.enrollments.first()
    send = ScheduledSend.objects.create(
        campaign=campaign, enrollment=enrollment, step=second, send_at=enrollment.created_at
    )
    data.update(
        _inline(
            "sequence_steps",
            [
                {
                    "id": first.pk,
                    "campaign": campaign.pk,
                    "position": 2,
                    "delay_minutes": 5,
                    "subject": first.subject,
                    "body_html": first.body_html,
                    "body_text": "",
                },
                {
                    "id": second.pk,
                    "campaign": campaign.pk,
                    "position": 1,
                    "delay_minutes": 0,
                    "subject": "Second",
                    "body_html": second.body_html,
                    "body_text": "",
                },
            ],
            initial=2,
        )
    )
    response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert response.status_code == 302, _page_errors(response)
    assert [(s.pk, s.position) for s in campaign.sequence_steps.order_by("position")] == [
        (second.pk, 1),
        (first.pk, 2),
    ]
    assert ScheduledSend.objects.get(pk=send.pk).step_id == second.pk


def test_deleting_a_step_and_adding_another_in_one_save(staff_client, campaign):
    old = campaign.sequence_steps.get()
    data = _change_form_data(campaign)
    data["sequence_steps-0-DELETE"] = "on"
    data.update({f"sequence_steps-1-{key}": value for key, value in {**STEP, "subject": "Replacement"}.items()})
    data["sequence_steps-TOTAL_FORMS"] = 2
    response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert response.status_code == 302, _page_errors(response)
    (step,) = campaign.sequence_steps.all()
    assert step.pk != old.pk and (step.position, step.subject) == (1, "Replacement")
    history = LogEntry.objects.get(object_id=str(campaign.pk)).get_change_message()
    assert "Added sequence step" in history and "Deleted sequence step" in history


def test_deleting_the_only_credential_is_refused_on_the_page(staff_client, campaign):
    data = _change_form_data(campaign)
    data["smtp_credentials-0-DELETE"] = "on"
    errors = _page_errors(staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data))
    assert errors["smtp_credentials"] == ["At least one SMTP credential is required."]
    assert campaign.smtp_credentials.count() == 1


def test_choosing_another_mailbox_keeps_the_credential_and_both_mailboxes_as_stored(staff_client, campaign, owner):
    credential = campaign.smtp_credentials.get()
    before = credential.mailbox
    other = MailboxFactory(account=owner, smtp_password="other-SECRET", imap_password="other-imap-SECRET")
    response = staff_client.post(
        f"/admin/campaigns/campaign/{campaign.pk}/change/", _change_form_data(campaign, mailbox=other.pk)
    )
    assert response.status_code == 302, _page_errors(response)
    changed = campaign.smtp_credentials.get()
    assert (changed.pk, changed.mailbox_id) == (credential.pk, other.pk)  # its sends and stats keep their id
    assert _secrets(before) == ("smtp-SECRET-value", "imap-SECRET-value")
    assert _secrets(other) == ("other-SECRET", "other-imap-SECRET")
    assert before.imap_configured  # the mailbox the campaign left is untouched, still the account's


def test_a_refusal_at_save_time_writes_nothing_and_tells_the_operator(staff_client, campaign, owner, monkeypatch):
    outreach = outreach_create(account=owner, name="Spring")

    def outreach_deleted_meanwhile(**kwargs):
        Outreach.objects.filter(pk=outreach.pk).delete()  # after the forms checked it, before the write
        return campaign_update(**kwargs)

    monkeypatch.setattr(campaigns.admin, "campaign_update", outreach_deleted_meanwhile)
    data = _change_form_data(campaign, label="Renamed")
    data.update(name="Renamed campaign", outreach=outreach.pk)
    url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    response = staff_client.post(url, data, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert _shown(response, "Not saved: outreach_id: No outreach with this id.")
    campaign.refresh_from_db()
    assert (campaign.name, campaign.outreach_id) == ("Admin campaign", None)
    assert campaign.smtp_credentials.get().label != "Renamed"
    assert Outreach.objects.filter(pk=outreach.pk).exists()  # the view's transaction rolled back


def test_the_change_page_offers_only_the_campaigns_accounts_mailboxes(staff_client, owner, outsider):
    campaign = CampaignFactory(account=owner)
    mine = MailboxFactory(account=owner, email="mine@acme.test", smtp_username="mine@acme.test")
    SmtpCredentialFactory(campaign=campaign, mailbox=mine)
    MailboxFactory(account=outsider, email="theirs@other.test", smtp_username="theirs@other.test")

    page = staff_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()

    assert "mine@acme.test" in page
    assert "theirs@other.test" not in page
