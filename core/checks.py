"""Deploy checks of our own, next to Django's `check --deploy`."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_development_secrets(app_configs, **kwargs):
    """The embedded development keys must not reach production."""
    warnings = []
    if settings.DEV_FIELD_ENCRYPTION_KEY in settings.FIELD_ENCRYPTION_KEYS:
        warnings.append(
            Warning(
                "FIELD_ENCRYPTION_KEYS uses the embedded development key.",
                hint="Set FIELD_ENCRYPTION_KEYS to keys made with Fernet.generate_key().",
                id="outreach.W001",
            )
        )
    if settings.PUBLIC_BASE_URL.startswith("http://"):
        warnings.append(
            Warning(
                "PUBLIC_BASE_URL is not https: tracking and unsubscribe links would travel in clear.",
                hint="Set PUBLIC_BASE_URL to the https address of this deployment.",
                id="outreach.W002",
            )
        )
    return warnings
