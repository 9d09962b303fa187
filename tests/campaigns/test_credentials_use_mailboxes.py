"""The seed's nested `smtp_credentials`, through the HTTP API, now that a credential is a campaign's use of a mailbox.

Each item names one of the account's mailboxes: by `mailbox_id`, or by its
sending address (the mailbox is created when the account has none with it,
and the item's settings update it when it has one, its passwords kept when
the item leaves them out). A mailbox is shared: its settings, secrets,
daily limit and disabled state are every using campaign's.
"""

import json

import pytest
from django.utils import timezone

from campaigns.models import Campaign, SmtpCredential
from mailboxes.models import Mailbox

from .factories import enroll
from .test_seed_payloads import CREATE

pytestmark = pytest.mark.django_db

ADDRESS = "sales@example.com"


def _seed_create(**credential):
    """The seed's create body as printed, its `...` placeholders filled with one sending address and secrets.

    `credential` changes the printed credential: a key set to None is left out.
    """
    body = json.loads(CREATE)
    del body["campaign"]["outreach_id"]  # "<optional>"
    (item,) = body["campaign"]["smtp_credentials"]
    item.update(
        smtp_username=ADDRESS,
        smtp_password="first-smtp-SECRET",
        imap_username=ADDRESS,
        imap_password="first-imap-SECRET",
    )
    for key, value in credential.items():
        if value is None:
            del item[key]
        else:
            item[key] = value
    return body


def _created(api, body):
    response = api.post("/api/campaigns", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def _refused(api, body):
    response = api.post("/api/campaigns", body, format="json")
    assert response.status_code == 422, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    return error["details"]


def _mailbox_of(campaign_id):
    return SmtpCredential.objects.select_related("mailbox").get(campaign_id=campaign_id).mailbox


def _with_mailbox(mailbox_id, **item):
    body = json.loads(CREATE)
    del body["campaign"]["outreach_id"]
    body["campaign"]["smtp_credentials"] = [{"mailbox_id": str(mailbox_id), **item}]
    return body


@pytest.fixture
def mailbox_id(api):
    """A mailbox of the owner's account, made through /api/mailboxes."""
    response = api.post(
        "/api/mailboxes",
        {
            "email": "team@example.com",
            "from_name": "The Team",
            "smtp_host": "smtp.example.net",
            "smtp_port": 465,
            "smtp_username": "team@example.com",
            "smtp_password": "team-smtp-SECRET",
            "daily_limit": 75,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_the_seed_payload_posted_twice_makes_one_mailbox_updated_by_the_second_and_its_passwords_kept(api, owner):
    first = _created(api, _seed_create())
    # The second campaign's item changes settings and leaves the passwords out.
    second = _created(
        api,
        _seed_create(
            label="Second",
            daily_limit=120,
            from_name="Sales Team",
            smtp_password=None,
            imap_password=None,
        ),
    )

    (mailbox,) = Mailbox.objects.filter(account=owner)
    assert _mailbox_of(first) == _mailbox_of(second) == mailbox
    assert (mailbox.email, mailbox.daily_limit, mailbox.from_name) == (ADDRESS, 120, "Sales Team")
    assert (mailbox.smtp_password, mailbox.imap_password) == ("first-smtp-SECRET", "first-imap-SECRET")
    # Each campaign keeps its own use of it: its label, and the id its shows and reenable take.
    assert [c.label for c in SmtpCredential.objects.filter(campaign_id__in=[first, second]).order_by("created_at")] == [
        "Primary",
        "Second",
    ]
    # The first campaign reads the mailbox as the second left it.
    (shown,) = api.get(f"/api/campaigns/{first}").json()["smtp_credentials"]
    assert (shown["mailbox_id"], shown["from_name"], shown["daily_limit"], shown["label"]) == (
        str(mailbox.pk),
        "Sales Team",
        120,
        "Primary",
    )


def test_pointing_a_stored_mailbox_at_another_server_needs_its_password_again(api, owner):
    first = _created(api, _seed_create())
    before = Mailbox.objects.get(account=owner)

    details = _refused(api, _seed_create(label="Elsewhere", smtp_host="smtp.attacker.example", smtp_password=None))

    assert details == {
        "smtp_credentials[0].smtp_password": [
            "Required when smtp_host change: a stored password is only sent where it was given for."
        ]
    }
    after = Mailbox.objects.get(account=owner)
    assert (after.smtp_host, after.smtp_password) == (before.smtp_host, "first-smtp-SECRET")
    assert SmtpCredential.objects.filter(mailbox=after).count() == 1 and _mailbox_of(first) == after
    # With the password, the move is the operator's own.
    _created(api, _seed_create(label="Moved", smtp_host="smtp.example.org", smtp_password="new-SECRET"))
    assert Mailbox.objects.get(account=owner).smtp_host == "smtp.example.org"


def test_an_address_the_account_has_no_mailbox_for_needs_its_smtp_password(api, owner, mailbox_id):
    details = _refused(api, _seed_create(smtp_password=None))
    assert details == {"smtp_credentials[0].smtp_password": ["This field is required."]}
    assert not Campaign.objects.exists()
    assert list(Mailbox.objects.values_list("email", flat=True)) == ["team@example.com"]  # none made


def test_a_password_given_by_a_later_campaign_replaces_the_shared_one(api, owner):
    first = _created(api, _seed_create())
    _created(api, _seed_create(smtp_password="rotated-smtp-SECRET", imap_password=None))
    mailbox = _mailbox_of(first)
    assert (mailbox.smtp_password, mailbox.imap_password) == ("rotated-smtp-SECRET", "first-imap-SECRET")
    assert Mailbox.objects.filter(account=owner).count() == 1


def test_the_address_names_the_mailbox_whatever_its_case(api, owner):
    first = _created(api, _seed_create())
    second = _created(api, _seed_create(smtp_username="Sales@Example.COM", smtp_password=None))
    assert _mailbox_of(first) == _mailbox_of(second)
    assert Mailbox.objects.filter(account=owner).count() == 1


def test_the_same_address_in_another_account_is_another_mailbox(api, outsider_api, owner, outsider):
    mine = _created(api, _seed_create())
    theirs = _created(outsider_api, _seed_create(smtp_password="their-smtp-SECRET"))
    assert _mailbox_of(mine) != _mailbox_of(theirs)
    assert (_mailbox_of(mine).account, _mailbox_of(theirs).account) == (owner, outsider)
    assert _mailbox_of(mine).smtp_password == "first-smtp-SECRET"


def test_an_item_with_the_accounts_mailbox_id_attaches_it_as_it_is(api, owner, mailbox_id):
    campaign_id = _created(api, _with_mailbox(mailbox_id, label="Via id", campaign_daily_limit=20))
    credential = SmtpCredential.objects.select_related("mailbox").get(campaign_id=campaign_id)
    assert (str(credential.mailbox_id), credential.label, credential.campaign_daily_limit) == (mailbox_id, "Via id", 20)
    mailbox = credential.mailbox
    assert (mailbox.email, mailbox.smtp_host, mailbox.daily_limit, mailbox.smtp_password) == (
        "team@example.com",
        "smtp.example.net",
        75,
        "team-smtp-SECRET",
    )
    assert Mailbox.objects.filter(account=owner).count() == 1
    (shown,) = api.get(f"/api/campaigns/{campaign_id}").json()["smtp_credentials"]
    assert (shown["mailbox_id"], shown["from_email"], shown["from_name"]) == (
        mailbox_id,
        "team@example.com",
        "The Team",
    )
    assert (shown["campaign_daily_limit"], shown["daily_limit"], shown["auth_kind"]) == (20, 75, "password")
    assert shown["smtp_security"] == "ssl"


@pytest.mark.parametrize("whose", ["another account's", "unknown"])
def test_a_mailbox_id_not_of_the_account_is_refused_at_its_path_and_nothing_is_written(api, outsider_api, whose):
    if whose == "unknown":
        foreign = "00000000-0000-0000-0000-000000000000"
    else:
        foreign = _mailbox_of(_created(outsider_api, _seed_create())).pk
    details = _refused(api, _with_mailbox(foreign))
    assert details == {"smtp_credentials[0].mailbox_id": ["No mailbox with this id in this account."]}
    assert not Campaign.objects.exclude(account__name="Outsider LLC").exists()
    assert not SmtpCredential.objects.exclude(campaign__account__name="Outsider LLC").exists()


def test_a_malformed_mailbox_id_is_refused_at_its_path(api):
    details = _refused(api, _with_mailbox("not-a-uuid"))
    assert list(details) == ["smtp_credentials[0].mailbox_id"]
    assert not Campaign.objects.exists()


def test_two_items_naming_the_same_mailbox_are_refused(api, owner, mailbox_id):
    message = ["Uses the same mailbox as smtp_credentials[0]."]
    body = _with_mailbox(mailbox_id, label="One")
    body["campaign"]["smtp_credentials"].append({"mailbox_id": mailbox_id, "label": "Two"})
    assert _refused(api, body) == {"smtp_credentials[1].mailbox_id": message}

    # By id and by its address, or twice by one address: the same mailbox each time.
    by_address = _seed_create()["campaign"]["smtp_credentials"][0]
    body["campaign"]["smtp_credentials"][1] = {**by_address, "smtp_username": "team@example.com"}
    assert _refused(api, body) == {"smtp_credentials[1].mailbox_id": message}
    body = _seed_create()
    body["campaign"]["smtp_credentials"].append({**by_address, "label": "Again"})
    assert _refused(api, body) == {"smtp_credentials[1].mailbox_id": message}

    assert not Campaign.objects.exists() and not SmtpCredential.objects.exists()
    assert list(Mailbox.objects.values_list("email", flat=True)) == ["team@example.com"]  # none made


@pytest.mark.parametrize("cap", [0, -1])
def test_a_campaign_daily_limit_below_one_is_refused(api, cap):
    details = _refused(api, _seed_create(campaign_daily_limit=cap))
    assert list(details) == ["smtp_credentials[0].campaign_daily_limit"]
    assert not Campaign.objects.exists() and not Mailbox.objects.exists()


def test_reenabling_from_one_campaign_reenables_the_mailbox_for_the_other(api):
    first, second = _created(api, _seed_create()), _created(api, _seed_create(smtp_password=None))
    mailbox = _mailbox_of(first)
    Mailbox.objects.filter(pk=mailbox.pk).update(disabled_at=timezone.now(), disabled_reason="Bounce rate 9.0% ≥ 8.0%")
    for campaign_id in (first, second):
        body = api.get(f"/api/campaigns/{campaign_id}").json()
        assert body["smtp_credentials"][0]["disabled_at"] is not None
        assert body["credentials"][0]["disabled_reason"] == "Bounce rate 9.0% ≥ 8.0%"

    credential_id = SmtpCredential.objects.get(campaign_id=first).pk
    response = api.post(f"/api/campaigns/{first}/smtp_credentials/{credential_id}/reenable")
    assert response.status_code == 200, response.json()
    assert (response.json()["disabled_at"], response.json()["mailbox_id"]) == (None, str(mailbox.pk))

    body = api.get(f"/api/campaigns/{second}").json()
    (shown,) = body["smtp_credentials"]
    (stats,) = body["credentials"]
    assert (shown["disabled_at"], shown["disabled_reason"]) == (None, "")
    assert (stats["disabled_at"], stats["disabled_reason"]) == (None, "")
    mailbox.refresh_from_db()
    assert (mailbox.disabled_at, mailbox.disabled_reason) == (None, "")


def test_reenabling_through_another_campaigns_credential_id_is_a_404(api):
    first, second = _created(api, _seed_create()), _created(api, _seed_create(smtp_password=None))
    theirs = SmtpCredential.objects.get(campaign_id=second).pk  # same mailbox, but not this campaign's use of it
    response = api.post(f"/api/campaigns/{first}/smtp_credentials/{theirs}/reenable")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "smtp_credential_not_found"


def test_the_show_carries_the_mailbox_id_and_what_every_campaign_sent_through_it_today(api, owner):
    first, second = _created(api, _seed_create(campaign_daily_limit=5)), _created(api, _seed_create())
    mailbox = _mailbox_of(first)
    ours = SmtpCredential.objects.get(campaign_id=first)
    theirs = SmtpCredential.objects.get(campaign_id=second)
    for _ in range(2):
        enroll(ours.campaign, "sent", credential=ours)
    for _ in range(3):
        enroll(theirs.campaign, "sent", credential=theirs)
    enroll(theirs.campaign, "pending", credential=theirs)  # nothing sent yet

    body = api.get(f"/api/campaigns/{first}").json()
    (shown,) = body["smtp_credentials"]
    assert (shown["id"], shown["mailbox_id"], shown["campaign_daily_limit"]) == (str(ours.pk), str(mailbox.pk), 5)
    (stats,) = body["credentials"]
    assert (stats["id"], stats["mailbox_id"]) == (str(ours.pk), str(mailbox.pk))
    assert (stats["sent_today"], stats["mailbox_sent_today"]) == (2, 5)
    assert (stats["daily_limit"], stats["campaign_daily_limit"]) == (200, 5)

    (other,) = api.get(f"/api/campaigns/{second}").json()["credentials"]
    assert (other["mailbox_id"], other["sent_today"], other["mailbox_sent_today"]) == (str(mailbox.pk), 3, 5)
    assert other["campaign_daily_limit"] is None
