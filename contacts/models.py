from django.db import models
from django.db.models.functions import Lower

from accounts.models import Account
from core.ids import uuid7

EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit, as email-validator applies it
NAME_MAX_LENGTH = 255


class Contact(models.Model):
    """A person an account can write to. Email is trimmed, lowercased, unique per account."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # No separate index on account: the unique (account, email) index leads with it.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts", db_index=False)
    email = models.CharField(max_length=EMAIL_MAX_LENGTH)
    first_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="")
    last_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="")
    company = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="")
    # db_default too: set-based inserts (imports, benchmarks' seeds) name their columns.
    linkedin_url = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="", db_default="")
    custom_fields = models.JSONField(default=dict, blank=True)
    subscribed = models.BooleanField(default=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "email"], name="contact_unique_email_per_account"),
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="contact_email_lowercase"),
        ]
        indexes = [
            models.Index(fields=["account", "created_at", "id"], name="contact_account_keyset"),
            models.Index(fields=["account", "updated_at"], name="contact_account_updated"),
        ]

    def __str__(self) -> str:
        return self.email


class ContactImport(models.Model):
    """One CSV or JSON import and its summary; its contacts are its members."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contact_imports")
    name = models.CharField(max_length=255, blank=True, default="")
    total_rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="Contacts that were new.")
    updated = models.PositiveIntegerField(default=0, help_text="Contacts that existed and were updated.")
    invalid_rows = models.JSONField(default=list, blank=True)
    contacts = models.ManyToManyField(Contact, through="ContactImportMember", related_name="imports")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["account", "created_at", "id"], name="import_account_keyset")]

    def __str__(self) -> str:
        return self.name or str(self.id)


class ContactImportMember(models.Model):
    """Links an import to its contacts.

    Written 100,000 rows at a time by one INSERT … SELECT from the rows it just
    upserted, so the database-level foreign keys would only add a deferred
    check per row at commit (seconds per large import). Deletes cascade
    through the ORM as usual.
    """

    contact_import = models.ForeignKey(
        ContactImport, on_delete=models.CASCADE, related_name="members", db_constraint=False, db_index=False
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="import_memberships", db_constraint=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact_import", "contact"], name="import_member_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_import_id} / {self.contact_id}"


class ContactList(models.Model):
    """A named list of contacts, identified by its own email address (normalized, unique per account).

    Journeys enroll "every member of the list with this address" (the
    /v1/journeys/:id/enroll seed), so the address is the list's key for
    integrators, and unique per account: two lists never answer to one address.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # No separate index on account: the unique (account, email_address) index leads with it.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contact_lists", db_index=False)
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    email_address = models.CharField(max_length=EMAIL_MAX_LENGTH)
    contacts = models.ManyToManyField(Contact, through="ContactListMember", related_name="lists")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "email_address"], name="list_unique_address_per_account"),
            models.CheckConstraint(
                condition=models.Q(email_address=Lower("email_address")), name="list_email_address_lowercase"
            ),
        ]
        indexes = [models.Index(fields=["account", "created_at", "id"], name="list_account_keyset")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email_address}>"


class ContactListMember(models.Model):
    """A contact's membership of a list (added once: the pair is unique)."""

    id = models.BigAutoField(primary_key=True)
    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE, related_name="members", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="list_memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact_list", "contact"], name="list_member_unique"),
        ]
        # The members page: a list's members in the order they were added (keyset on created_at, id).
        indexes = [models.Index(fields=["contact_list", "created_at", "id"], name="list_member_keyset")]

    def __str__(self) -> str:
        return f"{self.contact_list_id} / {self.contact_id}"
