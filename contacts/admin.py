import io

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils import timezone

from core.errors import ApplicationError
from mailing.subscriptions import contact_update

from .emails import InvalidEmail, normalize_email
from .importing import ImportRows, clean_custom_fields
from .models import Contact, ContactImport
from .services import contact_import_create


class ContactAdminForm(forms.ModelForm):
    """The API's rules for an email and custom fields, reported as form errors rather than failing the save."""

    class Meta:
        model = Contact
        fields = ("account", "email", "first_name", "last_name", "company", "custom_fields", "subscribed")

    def clean_email(self):
        try:
            email = normalize_email(self.cleaned_data["email"])
        except InvalidEmail as exc:
            raise forms.ValidationError(str(exc)) from None
        # On a change the account is read-only, so the form's own unique check leaves (account, email) out.
        taken = Contact.objects.filter(account_id=self.instance.account_id, email=email).exclude(pk=self.instance.pk)
        if self.instance.pk and taken.exists():
            raise forms.ValidationError("Another contact of the account has this email.")
        return email

    def clean_custom_fields(self):
        custom = self.cleaned_data["custom_fields"] or {}
        if not isinstance(custom, dict):
            raise forms.ValidationError("Custom fields are a JSON object.")
        try:
            return clean_custom_fields(custom)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    form = ContactAdminForm
    list_display = ("email", "first_name", "last_name", "company", "account", "subscribed", "updated_at")
    list_filter = ("subscribed", "account")
    search_fields = ("email", "first_name", "last_name", "company")
    list_select_related = ("account",)
    readonly_fields = ("id", "unsubscribed_at", "created_at", "updated_at")
    show_full_result_count = False  # no COUNT(*) over millions of contacts on each page

    def get_readonly_fields(self, request, obj=None):
        # A contact's enrollments and lists are its account's: it never moves to another account.
        return (*self.readonly_fields, "account") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.unsubscribed_at = None if obj.subscribed else timezone.now()
            super().save_model(request, obj, form, change)
            return
        # The service the API's PATCH calls: unsubscribing here stops every enrollment and cancels its
        # sends in the same transaction, as the unsubscribe link does.
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        contact_update(contact=Contact.objects.get(pk=obj.pk), data=changes)


class ContactImportUploadForm(forms.ModelForm):
    file = forms.FileField(help_text="CSV with a header row: email, first_name, last_name, company, other columns.")

    class Meta:
        model = ContactImport
        fields = ("account", "name")

    def clean_file(self):
        """Refuse a file that is not CSV, is empty or has no email column, before any write."""
        upload = self.cleaned_data["file"]
        head = upload.file.read(64 * 1024)  # the header row is all this check needs
        upload.file.seek(0)
        try:
            ImportRows.from_csv(io.BytesIO(head))
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None
        return upload


@admin.register(ContactImport)
class ContactImportAdmin(admin.ModelAdmin):
    list_display = ("__str__", "account", "total_rows", "created", "updated", "invalid_count", "created_at")
    list_filter = ("account",)
    search_fields = ("name",)
    list_select_related = ("account",)
    readonly_fields = ("id", "account", "name", "total_rows", "created", "updated", "invalid_rows", "created_at")

    @admin.display(description="invalid rows")
    def invalid_count(self, obj):
        return len(obj.invalid_rows)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ContactImportUploadForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("account", "name", "file")
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data["file"]
        try:
            created = contact_import_create(
                account=obj.account, name=obj.name or upload.name, rows=ImportRows.from_csv(upload.file)
            )
        except ApplicationError as exc:
            # The form is already valid; report the file error and keep nothing.
            messages.error(request, exc.message)
            obj.pk = None
            return
        obj.pk, obj._state.adding = created.pk, False
        messages.success(
            request,
            f"Imported {created.total_rows} rows: {created.created} created, {created.updated} updated, "
            f"{len(created.invalid_rows)} invalid.",
        )

    def response_add(self, request, obj, post_url_continue=None):
        if obj.pk is None:
            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    def log_addition(self, request, obj, message):
        if obj.pk is not None:
            super().log_addition(request, obj, message)
