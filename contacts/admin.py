import io

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils import timezone

from core.errors import ApplicationError
from mailing.inbound_services import contact_unsubscribe_everywhere

from .importing import ImportRows
from .models import Contact, ContactImport
from .services import contact_import_create


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("email", "first_name", "last_name", "company", "account", "subscribed", "updated_at")
    list_filter = ("subscribed", "account")
    search_fields = ("email", "first_name", "last_name", "company")
    list_select_related = ("account",)
    readonly_fields = ("id", "unsubscribed_at", "created_at", "updated_at")
    show_full_result_count = False  # no COUNT(*) over millions of contacts on each page

    def save_model(self, request, obj, form, change):
        if "subscribed" in form.changed_data:
            obj.unsubscribed_at = None if obj.subscribed else timezone.now()
        obj.email = obj.email.strip().lower()
        super().save_model(request, obj, form, change)
        if change and "subscribed" in form.changed_data and not obj.subscribed:
            # stop every enrollment (events, canceled sends), as the unsubscribe link does
            contact_unsubscribe_everywhere(contact=obj, source="admin")


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
