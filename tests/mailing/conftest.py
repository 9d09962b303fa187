"""Fixtures of the sending engine's tests: real SMTP servers and a campaign wired to them.

`run_until_idle(now=…)` drives the pipeline the way beat and the workers do,
in-process: a tick claims the due rows (as of `now`), then each enqueued
(credential, chunk) is sent by `send_chunk`, until nothing is due.
"""

from __future__ import annotations

import datetime

import pytest
from django.test import TestCase
from django.utils import timezone

from campaigns.models import Campaign, SequenceStep, SmtpCredential
from mailing.claiming import sends_claim_due
from mailing.sending import send_chunk
from tests.campaigns.factories import EnrollmentFactory, SequenceStepFactory, SmtpCredentialFactory
from tests.factories import ContactFactory

from .smtp_server import SmtpServer


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def second_smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


def credential_for(campaign: Campaign, server: SmtpServer, **fields) -> SmtpCredential:
    fields.setdefault("smtp_security", "none")
    return SmtpCredentialFactory(campaign=campaign, smtp_host="127.0.0.1", smtp_port=server.port, **fields)


def make_campaign(owner, server: SmtpServer, *, steps=((0,),), credentials=1, daily_limit=200, **options) -> Campaign:
    """A campaign of `owner` with `steps` (delay_minutes of each) and credentials on `server`."""
    options.setdefault("min_wait_seconds", 0)
    options.setdefault("max_wait_seconds", 0)
    campaign = Campaign.objects.create(account=owner, name="Engine test", **options)
    for position, (delay,) in enumerate(steps, start=1):
        SequenceStepFactory(
            campaign=campaign,
            position=position,
            delay_minutes=delay,
            subject="Hi {{first_name}}" if position == 1 else "Re: Hi {{first_name}}",
            body_html=f'<p>Hello {{{{first_name}}}} from step {position}, <a href="https://example.org/x">see</a></p>',
        )
    for _ in range(credentials):
        credential_for(campaign, server, daily_limit=daily_limit)
    return campaign


def enroll_contacts(campaign: Campaign, count: int, *, batch=1, domain="example.com"):
    return [
        EnrollmentFactory(
            campaign=campaign,
            batch_number=batch,
            contact=ContactFactory(
                account=campaign.account, email=f"c{i}.{campaign.pk.hex[:6]}@{domain}", first_name=f"Ann{i}"
            ),
        )
        for i in range(count)
    ]


def dispatch(api, campaign) -> dict:
    """Dispatch the campaign's next batch through the API; its answer."""
    response = api.post(f"/api/campaigns/{campaign.pk}/dispatch", {}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def run_until_idle(*, now: datetime.datetime | None = None, rounds: int = 20) -> list:
    """Tick and send until a tick claims nothing; returns every ChunkReport."""
    reports = []
    for _ in range(rounds):
        chunks: list = []
        with TestCase.captureOnCommitCallbacks(execute=True):
            sends_claim_due(
                enqueue=lambda c, ids, token, into=chunks: into.append((c, ids, token)), now=now or timezone.now()
            )
        if not chunks:
            break
        for credential_id, ids, token in chunks:
            reports.append(send_chunk(smtp_credential_id=credential_id, send_ids=ids, claim_token=token))
    return reports


@pytest.fixture
def later():
    """A moment far enough ahead that every send of a small test dispatch is due."""
    return timezone.now() + datetime.timedelta(days=400)


__all__ = ["SequenceStep", "credential_for", "dispatch", "enroll_contacts", "make_campaign", "run_until_idle"]
