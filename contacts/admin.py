import io

from django import forms
from django.contrib import admin, messages
from django.db.models import Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.utils import timezone

from core.admin import adopt_created
from core.errors import ApplicationError, ValidationFailed
from mailing.subscriptions import contact_update

from .emails import InvalidEmail, normalize_email
from .importing import ImportRows, clean_custom_fields
from .models import Contact, ContactImport, ContactList, ContactListMember
from .selectors import contact_list_with_member_count
from .services import (
    contact_import_create,
    contact_list_create,
    contact_list_delete,
    contact_list_members_add,
    contact_list_members_remove,
    contact_list_update,
)


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
    # The changelist's own default, stated so the lists' member autocomplete pages in a stable order too.
    ordering = ("-id",)
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


class ContactListAdminForm(forms.ModelForm):
    """The service's rules for the address (normalized, unique per account), reported as form errors."""

    class Meta:
        model = ContactList
        fields = ("account", "name", "email_address")

    def clean_email_address(self):
        try:
            return normalize_email(self.cleaned_data["email_address"])
        except InvalidEmail as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        cleaned = super().clean()
        # On a change the account is read-only, so the form's own unique check leaves (account, address) out.
        account_id = cleaned["account"].pk if cleaned.get("account") else self.instance.account_id
        address = cleaned.get("email_address")
        if account_id and address:
            taken = ContactList.objects.filter(account_id=account_id, email_address=address)
            if taken.exclude(pk=self.instance.pk).exists():
                self.add_error("email_address", f"Another list of the account has the address {address}.")
        return cleaned


class ContactListMemberFormSet(BaseInlineFormSet):
    """Members as rows; the admin writes them through the members services, never `formset.save()`."""

    def clean(self):
        super().clean()
        account_id = self.instance.account_id
        for form in self.forms:
            contact = getattr(form, "cleaned_data", {}).get("contact")
            if contact is None or self._should_delete_form(form) or not account_id:
                continue
            if contact.account_id != account_id:
                form.add_error(
                    "contact",
                    f"{contact.email} is a contact of another account; a list holds its own account's contacts only.",
                )

    def member_changes(self) -> tuple[list[str], list[str]]:
        """(contact ids to add, contact ids to remove), from the rows added, changed and deleted."""
        add, remove = [], []
        for index, form in enumerate(self.forms):
            stored = index < self.initial_form_count()
            before = form.initial.get("contact") if stored else None
            after = form.cleaned_data.get("contact")
            if self._should_delete_form(form):
                if before:
                    remove.append(str(before))
            elif stored and "contact" in form.changed_data:
                remove.append(str(before))
                add.append(str(after.pk))
            elif not stored and form.has_changed() and after is not None:
                add.append(str(after.pk))
        return add, remove

    def record_changes(self) -> None:
        """What the admin's history says was added, changed and deleted (formset.save() would set these)."""
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        for index, form in enumerate(self.forms):
            if self._should_delete_form(form):
                if index < self.initial_form_count():
                    self.deleted_objects.append(form.instance)
            elif index >= self.initial_form_count():
                if form.has_changed():
                    self.new_objects.append(form.instance)
            elif form.has_changed():
                self.changed_objects.append((form.instance, form.changed_data))


MEMBERS_SHOWN = 100


class ContactListMemberInline(admin.TabularInline):
    model = ContactListMember
    formset = ContactListMemberFormSet
    fields = ("contact", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("contact",)
    extra = 1
    verbose_name = "member"
    verbose_name_plural = f"members (the {MEMBERS_SHOWN} added last; the API lists them all)"


@admin.register(ContactList)
class ContactListAdmin(admin.ModelAdmin):
    form = ContactListAdminForm
    list_display = ("name", "email_address", "account", "member_count", "created_at")
    list_filter = ("account",)
    search_fields = ("name", "email_address")
    list_select_related = ("account",)
    readonly_fields = ("id", "member_count", "created_at", "updated_at")
    fields = ("id", "account", "name", "email_address", "member_count", "created_at", "updated_at")
    inlines = [ContactListMemberInline]

    def get_queryset(self, request):
        return contact_list_with_member_count(super().get_queryset(request))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj):
        return getattr(obj, "member_count", 0) if obj and obj.pk else 0

    def get_readonly_fields(self, request, obj=None):
        # The account is chosen once, at creation: its members are that account's contacts.
        return (*self.readonly_fields, "account") if obj else self.readonly_fields

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, ContactListMemberInline) and obj is not None and obj.pk:
            # A list may have 100,000 members: the page shows the last ones added, not a form per member.
            last = ContactListMember.objects.filter(contact_list=obj).order_by("-created_at", "-id")
            kwargs["queryset"] = kwargs["queryset"].filter(pk__in=Subquery(last.values("pk")[:MEMBERS_SHOWN]))
        return kwargs

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            # The form passed the same checks a moment before: the data changed meanwhile.
            # Nothing was written (the view's transaction rolled back).
            self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if change:
            data = {name: form.cleaned_data[name] for name in form.changed_data if name in ("name", "email_address")}
            contact_list_update(contact_list=obj, data=data)
        else:
            adopt_created(obj, contact_list_create(account=obj.account, name=obj.name, email_address=obj.email_address))

    def save_related(self, request, form, formsets, change):
        contact_list = form.instance
        for formset in formsets:
            add, remove = formset.member_changes()
            if remove:
                contact_list_members_remove(contact_list=contact_list, contact_ids=remove)
            if add:
                result = contact_list_members_add(contact_list=contact_list, contact_ids=add)
                if result.not_found_contact_ids:
                    raise ValidationFailed(
                        "These contacts are not contacts of the list's account: "
                        + ", ".join(result.not_found_contact_ids)
                    )
            formset.record_changes()

    def delete_model(self, request, obj):
        contact_list_delete(contact_list=obj)

    def delete_queryset(self, request, queryset):
        for contact_list in queryset:
            contact_list_delete(contact_list=contact_list)
