"""Fixtures for inbound events: a campaign with a credential, sends, a real Dovecot, eager Celery."""

import pytest

from config.celery import app as celery_app
from tests.campaigns.factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory

from .dovecot import PASSWORD, USER, DovecotServer


@pytest.fixture
def campaign(owner):
    campaign = CampaignFactory(account=owner, status="active")
    SequenceStepFactory(campaign=campaign, position=1)
    SequenceStepFactory(campaign=campaign, position=2)
    return campaign


@pytest.fixture
def credential(campaign):
    return SmtpCredentialFactory(campaign=campaign)


@pytest.fixture(autouse=True)
def _empty_open_queue(db):
    """Pixel loads queued in Redis by an earlier (failed) test of this database must not leak in."""
    from inbound import open_queue

    client = open_queue._client()
    if client is not None:
        client.delete(open_queue._key())


@pytest.fixture
def eager_tasks():
    """Run `.delay()` in process, so on-commit enqueues are applied within the test."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


@pytest.fixture
def dovecot(settings):
    server = DovecotServer()
    settings.IMAP_CA_BUNDLE = str(server.cert)
    yield server
    server.stop()


@pytest.fixture
def imap_credential(campaign, dovecot):
    return SmtpCredentialFactory(
        campaign=campaign,
        imap_host="127.0.0.1",
        imap_port=dovecot.port,
        imap_username=USER,
        imap_password=PASSWORD,
    )
