from rest_framework import serializers

from contacts.models import Contact, ContactImport, ContactList
from core.serializers import StrictInputSerializer


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "company",
            "linkedin_url",
            "custom_fields",
            "subscribed",
            "unsubscribed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ContactCreateInputSerializer(StrictInputSerializer):
    email = serializers.CharField(max_length=320, help_text="Trimmed and lowercased; unique per account.")
    first_name = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    last_name = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    company = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    linkedin_url = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=255,
        help_text="The person's LinkedIn profile URL.",
    )
    custom_fields = serializers.DictField(required=False, help_text="Free-form values for {{custom.<key>}} tags.")
    subscribed = serializers.BooleanField(required=False, default=True)


class ContactUpdateInputSerializer(StrictInputSerializer):
    email = serializers.CharField(required=False, max_length=320)
    first_name = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    last_name = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    company = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    linkedin_url = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=255,
        help_text="The person's LinkedIn profile URL.",
    )
    custom_fields = serializers.DictField(required=False, help_text="Replaces the stored object as a whole.")
    subscribed = serializers.BooleanField(
        required=False, help_text="false unsubscribes (sets unsubscribed_at); true resubscribes."
    )


class ContactImportSerializer(serializers.ModelSerializer):
    invalid_rows = serializers.ListField(
        child=serializers.DictField(),
        help_text='Each `{"row", "email", "reason"}`: CSV rows are numbered as in the file (header = 1); '
        "JSON rows from 1.",
    )

    class Meta:
        model = ContactImport
        fields = ["id", "name", "total_rows", "created", "updated", "invalid_rows", "created_at"]
        read_only_fields = fields


class ContactImportJsonInputSerializer(StrictInputSerializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
    contacts = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text=(
            "Objects with email, first_name, last_name, company, linkedin_url, custom_fields; "
            "other keys become custom fields."
        ),
    )


class ContactImportCsvInputSerializer(StrictInputSerializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
    file = serializers.FileField(
        allow_empty_file=True,  # the import reports an empty file with its own code
        help_text="CSV with a header row; columns email, first_name, last_name, company, linkedin_url, …",
    )


class ContactListSerializer(serializers.ModelSerializer):
    member_count = serializers.IntegerField(read_only=True, help_text="How many contacts are on the list.")

    class Meta:
        model = ContactList
        fields = ["id", "name", "email_address", "member_count", "created_at", "updated_at"]
        read_only_fields = fields


class ContactListCreateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=255)
    email_address = serializers.CharField(
        max_length=320,
        help_text="The address that identifies the list (journeys enroll a list by it): trimmed, lowercased, "
        "unique per account.",
    )


class ContactListUpdateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(required=False, max_length=255)
    email_address = serializers.CharField(required=False, max_length=320)


MEMBERS_MAX = 10_000


class ContactListMembersInputSerializer(StrictInputSerializer):
    emails = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        max_length=MEMBERS_MAX,
        help_text=f"Contacts' email addresses (trimmed and lowercased before matching), at most {MEMBERS_MAX:,}.",
    )
    contact_ids = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        max_length=MEMBERS_MAX,
        help_text=f"Contact ids, at most {MEMBERS_MAX:,}; a malformed id is reported in `not_found`.",
    )

    def validate(self, attrs):
        if "emails" not in attrs and "contact_ids" not in attrs:
            raise serializers.ValidationError("Give `emails` or `contact_ids` (or both).")
        return attrs


class MembersNotFoundSerializer(serializers.Serializer):
    emails = serializers.ListField(
        child=serializers.CharField(), help_text="Normalized addresses that match no contact of the account."
    )
    contact_ids = serializers.ListField(
        child=serializers.CharField(),
        help_text="Ids, as given, that match no contact of the account (unknown, malformed, another account's).",
    )


class ContactListMembersAddedSerializer(serializers.Serializer):
    added = serializers.IntegerField(help_text="Contacts newly added; those already on the list are not counted.")
    not_found = MembersNotFoundSerializer()


class ContactListMembersRemovedSerializer(serializers.Serializer):
    removed = serializers.IntegerField(help_text="Contacts taken off the list; those not on it are not counted.")
    not_found = MembersNotFoundSerializer()
