"""The admin's campaign forms: they hold the operator's input, the services judge it.

Each form (the campaign) and formset (its steps, its credentials) hands its
part to `campaign_validate`, the check `campaign_create` and
`campaign_update` run before they write, and files the messages on the
fields they name, so an operator meets the API's rules with the API's words.
The admin then saves through those services (`CampaignAdmin.save_related`).

A campaign's credentials name mailboxes: the mailbox's settings and
secrets are edited on its own page (`mailboxes.admin`).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from core.errors import ValidationFailed
from mailboxes.models import Mailbox

from .models import Campaign, SmtpCredential
from .services import STEP_FIELDS, UPDATABLE_FIELDS, campaign_validate


def file_errors(form: forms.BaseForm, details: dict[str, list[str]], *, prefix: str = "", rename=None) -> None:
    """Put the service's messages for paths under `prefix` on `form` (`rename`: service name → form field).

    A field that shows an error already keeps only its own: the form's field
    check and the model rule the service runs again often say the same thing.
    """
    rename = rename or {}
    for path, messages in details.items():
        if not path.startswith(prefix):
            continue
        name = path[len(prefix) :]
        field = rename.get(name, name)
        if field in form.fields:
            if field not in form.errors:
                form.add_error(field, list(messages))
        elif name in ("", "non_field_errors"):
            form.add_error(None, list(messages))
        elif "[" not in name:  # another list's path is that list's formset's to show
            form.add_error(None, [f"{name}: {message}" for message in messages])


class CampaignAdminForm(forms.ModelForm):
    """The campaign's own fields; `account` is chosen on the add page only."""

    class Meta:
        model = Campaign
        fields = ("account", "name", "outreach", *(f for f in UPDATABLE_FIELDS if f not in ("name", "outreach_id")))

    def service_data(self, *, changed_only: bool = False) -> dict[str, Any]:
        """The cleaned values as the services take them (`outreach` → `outreach_id`)."""
        names = self.changed_data if changed_only else self.cleaned_data
        data = {}
        for name in names:
            if name == "outreach" and name in self.cleaned_data:
                outreach = self.cleaned_data["outreach"]
                data["outreach_id"] = outreach.pk if outreach else None
            elif name in UPDATABLE_FIELDS and name in self.cleaned_data:
                data[name] = self.cleaned_data[name]
        return data

    def full_clean(self):
        super().full_clean()
        if hasattr(self, "cleaned_data"):  # bound, and checked field by field
            self._check_with_the_service()

    def _check_with_the_service(self) -> None:
        # After the model's own checks (ModelForm), so a problem both find is shown once.
        campaign = self.instance
        if campaign._state.adding:
            if not self.cleaned_data.get("account"):
                return  # the field says it is required
            campaign = Campaign(account=self.cleaned_data["account"])
        try:
            campaign_validate(campaign=campaign, data=self.service_data())
        except ValidationFailed as exc:
            file_errors(self, exc.details, rename={"outreach_id": "outreach"})


class ServiceCheckedFormSet(BaseInlineFormSet):
    """An inline list the services take whole: `service_key` names the argument (`sequence_steps`)."""

    service_key = ""
    rename: dict[str, str] = {}

    def kept_forms(self) -> list[forms.BaseForm]:
        """The forms of the items the campaign keeps: stored ones not deleted, and new ones filled in."""
        return [
            form
            for index, form in enumerate(self.forms)
            if not self._should_delete_form(form) and (index < self.initial_form_count() or form.has_changed())
        ]

    def item(self, form: forms.BaseForm) -> dict[str, Any]:
        raise NotImplementedError

    def service_items(self) -> list[dict[str, Any]]:
        """The list as the service takes it; a stored item carries its `id`."""
        items = []
        for form in self.kept_forms():
            item = self.item(form)
            if form in self.initial_forms:
                item["id"] = form.instance.pk
            items.append(item)
        return items

    def clean(self):
        # Not super().clean(): its uniqueness check would refuse swapping two positions, which the
        # service does; the service's own rules judge the list.
        try:
            campaign_validate(campaign=self.instance, **{self.service_key: self.service_items()})
        except ValidationFailed as exc:
            for index, form in enumerate(self.kept_forms()):
                file_errors(form, exc.details, prefix=f"{self.service_key}[{index}].", rename=self.rename)
            if exc.details.get(self.service_key):
                raise ValidationError(exc.details[self.service_key]) from None

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


class SequenceStepFormSet(ServiceCheckedFormSet):
    service_key = "sequence_steps"

    def item(self, form):
        return {name: form.cleaned_data[name] for name in STEP_FIELDS if name in form.cleaned_data}


class MailboxChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj} ({obj.account})"


class SmtpCredentialForm(forms.ModelForm):
    """A campaign's use of a mailbox: which one, its label here, and this campaign's own daily cap.

    The mailbox's settings, secrets and daily limit are edited on the mailbox's own page.
    """

    class Meta:
        model = SmtpCredential
        fields = ("mailbox", "label", "campaign_daily_limit")
        field_classes = {"mailbox": MailboxChoiceField}

    # Set by the inline for a stored campaign (`SmtpCredentialInline.get_formset`): only its account's
    # mailboxes are offered. On the add page the account is not chosen yet; the service refuses another's.
    account_id = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        mailboxes = Mailbox.objects.select_related("account").order_by("email")
        if self.account_id is not None:
            mailboxes = mailboxes.filter(account_id=self.account_id)
        self.fields["mailbox"].queryset = mailboxes


class SmtpCredentialFormSet(ServiceCheckedFormSet):
    service_key = "smtp_credentials"
    rename = {"mailbox_id": "mailbox"}

    def clean(self):
        # The service judges a list whose items name mailboxes of the campaign's account. Without the
        # account (the add page's field says it is required) it has no account to look them up in, and a
        # row without its mailbox (its field says so) would read to it as "make a mailbox from these
        # settings", which this page has none of: it would only add noise about SMTP fields not shown here.
        if self.instance.account_id is None:
            return
        if any(form.cleaned_data.get("mailbox") is None for form in self.kept_forms()):
            return
        super().clean()

    def item(self, form):
        cleaned = form.cleaned_data
        item = {name: cleaned[name] for name in ("label", "campaign_daily_limit") if name in cleaned}
        if cleaned.get("mailbox") is not None:
            item["mailbox_id"] = cleaned["mailbox"].pk
        return item
