from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
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
    ContactSerializer,
    ContactUpdateInputSerializer,
)

CONTACT_NOT_FOUND = (404, "contact_not_found", "Unknown id, or another account's contact.")
CONTACT_EXISTS = (409, "contact_already_exists", "Another contact of the account has this email.")
IMPORT_NOT_FOUND = (404, "contact_import_not_found", "Unknown id, or another account's import.")


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
