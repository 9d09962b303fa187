import factory

from tests.factories import AccountFactory
from webhooks.models import WebhookEndpoint
from webhooks.signing import secret_generate


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    """An endpoint written straight to the database, as if its URL had passed
    validation when created (its name may resolve elsewhere by delivery time)."""

    class Meta:
        model = WebhookEndpoint

    account = factory.SubFactory(AccountFactory)
    url = "https://hooks.example.com/receive"
    secret = factory.LazyFunction(secret_generate)
