from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from contacts import selectors, services
from contacts.importing import ImportRows
from core.parsers import NulRefusingJSONParser
from core.schema import MALFORMED_JSON, VALIDATION_FAILED, error_responses
from core.viewsets import AccountScopedViewSet
from mailing import subscriptions

from .serializers import (
    ContactCreateInputSerializer,
    ContactImportCsvInputSerializer,
    ContactImportJsonInputSerializer,
    ContactImportSerializer,
    ContactListCreateInputSerializer,
    ContactListMembersAddedSerializer,
    ContactListMembersInputSerializer,
    ContactListMembersRemovedSerializer,
    ContactListSerializer,
    ContactListUpdateInputSerializer,
    ContactSerializer,
    ContactUpdateInputSerializer,
)

CONTACT_NOT_FOUND = (404, "contact_not_found", "Unknown id, or another account's contact.")
CONTACT_EXISTS = (409, "contact_already_exists", "Another contact of the account has this email.")
IMPORT_NOT_FOUND = (404, "contact_import_not_found", "Unknown id, or another account's import.")
LIST_NOT_FOUND = (404, "list_not_found", "Unknown or malformed id, or another account's list.")
LIST_EXISTS = (409, "list_already_exists", "Another list of the account has this email_address.")


@extend_schema_view(
    list=extend_schema(
        summary="List contacts", responses={200: ContactSerializer(many=True), **error_responses(VALIDATION_FAILED)}
    ),
    retrieve=extend_schema(
        summary="Show a contact", responses={200: ContactSerializer, **error_responses(CONTACT_NOT_FOUND)}
    ),
    create=extend_schema(
        summary="Create a contact",
        request=ContactCreateInputSerializer,
        responses={201: ContactSerializer, **error_responses(VALIDATION_FAILED, MALFORMED_JSON, CONTACT_EXISTS)},
    ),
    partial_update=extend_schema(
        summary="Update a contact",
        request=ContactUpdateInputSerializer,
        responses={
            200: ContactSerializer,
            **error_responses(CONTACT_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON, CONTACT_EXISTS),
        },
    ),
    destroy=extend_schema(summary="Delete a contact", responses={204: None, **error_responses(CONTACT_NOT_FOUND)}),
)
class ContactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    AccountScopedViewSet,
):
    serializer_class = ContactSerializer
    filterset_class = selectors.ContactFilter
    not_found_code = "contact_not_found"
    not_found_message = "No contact with this id."
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.contact_list(account=self.request.user)

    def create(self, request):
        data = ContactCreateInputSerializer.validate_input(request.data)
        contact = services.contact_create(account=request.user, **data)
        return Response(ContactSerializer(contact).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        contact = self.get_object()
        data = ContactUpdateInputSerializer.validate_input(request.data)
        # mailing's update: unsubscribing also stops every enrollment, as the unsubscribe link does
        contact = subscriptions.contact_update(contact=contact, data=data)
        return Response(ContactSerializer(contact).data)

    def destroy(self, request, pk=None):
        services.contact_delete(contact=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="List contact imports", responses={200: ContactImportSerializer(many=True)}),
    retrieve=extend_schema(
        summary="Show an import's summary",
        responses={200: ContactImportSerializer, **error_responses(IMPORT_NOT_FOUND)},
    ),
)
class ContactImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    serializer_class = ContactImportSerializer
    not_found_code = "contact_import_not_found"
    not_found_message = "No contact import with this id."
    parser_classes = [NulRefusingJSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return selectors.contact_import_list(account=self.request.user)

    @extend_schema(
        summary="Import contacts from CSV or JSON",
        description=(
            "Either a CSV upload (multipart field `file`, header row, columns email, first_name, last_name, "
            'company; any other column becomes a custom field) or JSON `{"name", "contacts": [...]}`. '
            "Invalid rows are reported in `invalid_rows` and the rest imported; a contact that exists is "
            "updated and linked, never duplicated, and its subscription is never changed by an import."
        ),
        request={
            "multipart/form-data": ContactImportCsvInputSerializer,
            "application/json": ContactImportJsonInputSerializer,
        },
        responses={
            201: ContactImportSerializer,
            413: OpenApiResponse(description="`payload_too_large`: JSON over 10 MB or a CSV over 50 MB."),
            **error_responses(
                VALIDATION_FAILED,
                MALFORMED_JSON,
                (422, "csv_invalid", "The upload is not a CSV text file (binary, not UTF-8, or unparseable)."),
                (422, "csv_empty", "The file has no header row or no data rows."),
                (422, "csv_missing_email_column", "The header row has no email column."),
            ),
        },
    )
    def create(self, request):
        if request.content_type.startswith("multipart/"):
            data = ContactImportCsvInputSerializer.validate_input(request.data)
            upload = data["file"]
            name = data["name"] or upload.name
            rows = ImportRows.from_csv(upload.file)
        else:
            data = ContactImportJsonInputSerializer.validate_input(request.data)
            name, rows = data["name"], ImportRows.from_records(data["contacts"])
        contact_import = services.contact_import_create(account=request.user, name=name, rows=rows)
        return Response(ContactImportSerializer(contact_import).data, status=status.HTTP_201_CREATED)


MEMBERS_DESCRIPTION = (
    'Body: `{"emails": [...]}` or `{"contact_ids": [...]}` (or both), at most 10,000 entries each. Emails '
    "are trimmed and lowercased before matching. Only contacts of the caller's account are ever matched: an "
    "email or id that names none of them (unknown, malformed, another account's) is listed in `not_found`, "
    "never refused."
)


@extend_schema_view(
    list=extend_schema(
        summary="List contact lists",
        description="Oldest first, each with its `member_count`.",
        responses={200: ContactListSerializer(many=True), **error_responses(VALIDATION_FAILED)},
    ),
    retrieve=extend_schema(
        summary="Show a contact list", responses={200: ContactListSerializer, **error_responses(LIST_NOT_FOUND)}
    ),
    create=extend_schema(
        summary="Create a contact list",
        description="The list starts empty; `email_address` is validated and normalized like a contact's email.",
        request=ContactListCreateInputSerializer,
        responses={201: ContactListSerializer, **error_responses(VALIDATION_FAILED, MALFORMED_JSON, LIST_EXISTS)},
    ),
    partial_update=extend_schema(
        summary="Update a contact list",
        request=ContactListUpdateInputSerializer,
        responses={
            200: ContactListSerializer,
            **error_responses(LIST_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON, LIST_EXISTS),
        },
    ),
    destroy=extend_schema(
        summary="Delete a contact list (its contacts stay)",
        responses={204: None, **error_responses(LIST_NOT_FOUND)},
    ),
)
class ContactListViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    serializer_class = ContactListSerializer
    not_found_code = "list_not_found"
    not_found_message = "No list with this id."
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        # The members endpoints only need the list itself, not a count over all its members.
        with_count = self.action in ("list", "retrieve", "create", "partial_update")
        return selectors.contact_list_list(account=self.request.user, member_count=with_count)

    def create(self, request):
        data = ContactListCreateInputSerializer.validate_input(request.data)
        contact_list = services.contact_list_create(account=request.user, **data)
        return Response(
            ContactListSerializer(self.get_queryset().get(pk=contact_list.pk)).data, status=status.HTTP_201_CREATED
        )

    def partial_update(self, request, pk=None):
        contact_list = self.get_object()
        data = ContactListUpdateInputSerializer.validate_input(request.data)
        # The list was read with its member_count, which an update of name or address leaves as it is.
        contact_list = services.contact_list_update(contact_list=contact_list, data=data)
        return Response(ContactListSerializer(contact_list).data)

    def destroy(self, request, pk=None):
        services.contact_list_delete(contact_list=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="List a contact list's members",
        description="The member contacts (as `/api/contacts` shows them), in the order they were added.",
        responses={200: ContactSerializer(many=True), **error_responses(LIST_NOT_FOUND, VALIDATION_FAILED)},
    )
    @action(detail=True, methods=["get"], url_path="members")
    def members(self, request, pk=None):
        contact_list = self.get_object()
        page = self.paginate_queryset(selectors.contact_list_member_list(contact_list=contact_list))
        return self.get_paginated_response(ContactSerializer([member.contact for member in page], many=True).data)

    @extend_schema(
        summary="Add contacts to a contact list",
        description="Idempotent: a contact already on the list is left as it is and not counted in `added`. "
        + MEMBERS_DESCRIPTION,
        request=ContactListMembersInputSerializer,
        responses={
            200: ContactListMembersAddedSerializer,
            **error_responses(LIST_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON),
        },
    )
    @members.mapping.post
    def members_add(self, request, pk=None):
        contact_list = self.get_object()
        data = ContactListMembersInputSerializer.validate_input(request.data)
        change = services.contact_list_members_add(contact_list=contact_list, **data)
        return Response(_members_body("added", change))

    @extend_schema(
        summary="Remove contacts from a contact list",
        description="Idempotent: a contact of the account that is not on the list is not counted in `removed`. "
        + MEMBERS_DESCRIPTION,
        request=ContactListMembersInputSerializer,
        responses={
            200: ContactListMembersRemovedSerializer,
            **error_responses(LIST_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON),
        },
    )
    @members.mapping.delete
    def members_remove(self, request, pk=None):
        contact_list = self.get_object()
        data = ContactListMembersInputSerializer.validate_input(request.data)
        change = services.contact_list_members_remove(contact_list=contact_list, **data)
        return Response(_members_body("removed", change))


def _members_body(verb: str, change: services.MembersChange) -> dict:
    return {
        verb: change.count,
        "not_found": {"emails": change.not_found_emails, "contact_ids": change.not_found_contact_ids},
    }
