"""Factories for mailboxes."""

import factory

from mailboxes.models import Mailbox
from tests.factories import AccountFactory


class MailboxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Mailbox

    account = factory.SubFactory(AccountFactory)
    smtp_host = "smtp.example.com"
    smtp_port = 587
    smtp_username = factory.Sequence(lambda n: f"sender{n}@example.com")
    email = factory.SelfAttribute("smtp_username")
    smtp_password = "smtp-secret-password"
    smtp_security = "starttls"
    daily_limit = 200
