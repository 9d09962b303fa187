from django import forms
from django.conf import settings
from django.contrib import admin, messages

from .models import Account, ApiKey
from .services import api_key_create, api_key_revoke


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ("prefix", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class AccountForm(forms.ModelForm):
    """The SMTP2GO Authorization value is write-only, like every secret in the admin."""

    new_inbound_webhook_authorization = forms.CharField(
        label="SMTP2GO webhook Authorization",
        required=False,
        strip=True,
        help_text='Write-only: "Basic <base64 user:password>" or "Bearer <token>"; blank keeps the stored value.',
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_inbound_webhook_authorization = forms.BooleanField(label="Require no Authorization header", required=False)

    class Meta:
        model = Account
        fields = ("name", "monthly_limit", "timezone")

    def clean(self):
        cleaned = super().clean()
        value = cleaned.get("new_inbound_webhook_authorization")
        if value:
            if value.split(" ", 1)[0].lower() not in ("basic", "bearer") or " " not in value:
                self.add_error("new_inbound_webhook_authorization", 'Start with "Basic " or "Bearer ".')
            self.instance.inbound_webhook_authorization = value
        elif cleaned.get("clear_inbound_webhook_authorization"):
            self.instance.inbound_webhook_authorization = ""
        return cleaned


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    list_display = ("name", "monthly_limit", "timezone", "created_at")
    search_fields = ("name",)
    readonly_fields = ("id", "smtp2go_webhook_url", "created_at", "updated_at")
    inlines = [ApiKeyInline]

    @admin.display(description="SMTP2GO webhook URL")
    def smtp2go_webhook_url(self, obj):
        if obj is None or obj.pk is None:
            return "Shown once the account is saved."
        return f"{settings.PUBLIC_BASE_URL}/api/inbound/smtp2go/{obj.inbound_webhook_token}"


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "account", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "account__name")
    list_select_related = ("account",)
    actions = ["revoke_keys"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("account", "name")
        return ("account", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("account", "prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        created, raw_key = api_key_create(account=obj.account, name=obj.name)
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = (
            created.pk,
            created.prefix,
            created.key_hash,
            created.created_at,
        )
        obj._state.adding = False
        messages.warning(request, f"New API key (shown once, copy it now): {raw_key}")

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
        self.message_user(request, "Revoked.")
