from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from campaigns.api.actions import CampaignActionViewSet
from contacts.models import Contact, ContactImport
from core.lookups import get_or_not_found
from core.schema import MALFORMED_JSON, VALIDATION_FAILED, error_responses
from core.serializers import INTEGER_MAX
from enrollments import listing, services

from .serializers import (
    EnrollContactInputSerializer,
    EnrolledContactSerializer,
    EnrollInputSerializer,
    EnrollmentSerializer,
    EnrollResultSerializer,
    ReplySerializer,
    SkipSerializer,
)

CAMPAIGN_NOT_FOUND = (404, "campaign_not_found", "Unknown campaign or another account's.")
CONTACT_NOT_FOUND = (404, "contact_not_found", "enroll_contact with an unknown contact_id.")
IMPORT_NOT_FOUND = (404, "contact_import_not_found", "enroll with an unknown contact_import_id.")
ALREADY_ENROLLED = (422, "contact_already_enrolled", "enroll_contact for a contact already in the campaign.")
UNSUBSCRIBED = (422, "contact_unsubscribed", "enroll_contact for an unsubscribed contact.")
SIBLING = (
    422,
    "contact_in_sibling_campaign",
    "enroll_contact for a contact enrolled in another campaign of an outreach with unique_contacts.",
)


class CampaignEnrollmentViewSet(CampaignActionViewSet):
    """The enrollment workflow of one campaign: /api/campaigns/{campaign_id}/…"""

    queryset = listing.Enrollment.objects.none()  # for the schema; every handler scopes its own reads

    @extend_schema(
        summary="Enroll a contact import",
        description=(
            "Bulk-enrolls every subscribed contact of the import that is not in the campaign yet, in batches of "
            "`batch_size` numbered after the campaign's highest batch. Skipped contacts are reported and recorded "
            "(see `GET …/skips`): already in this campaign, in a sibling campaign of an outreach with "
            "`unique_contacts`, or (with `verify_email_mx`) a domain with no MX record. A DNS timeout is not "
            "proof: such contacts are enrolled and checked again at dispatch."
        ),
        request=EnrollInputSerializer,
        responses={
            200: EnrollResultSerializer,
            **error_responses(CAMPAIGN_NOT_FOUND, IMPORT_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON),
        },
    )
    def enroll(self, request, campaign_id=None):
        campaign = self.campaign()
        data = EnrollInputSerializer.validate_input(request.data)
        contact_import = get_or_not_found(
            ContactImport.objects.filter(account=request.user),
            data["contact_import_id"],
            code="contact_import_not_found",
            message="No contact import with this id.",
        )
        result = services.enrollments_enroll_import(
            campaign=campaign, contact_import=contact_import, batch_size=data["batch_size"]
        )
        return Response(EnrollResultSerializer(result).data)

    @extend_schema(
        summary="Enroll a single contact",
        request=EnrollContactInputSerializer,
        responses={
            201: EnrolledContactSerializer,
            **error_responses(
                CAMPAIGN_NOT_FOUND,
                CONTACT_NOT_FOUND,
                ALREADY_ENROLLED,
                UNSUBSCRIBED,
                SIBLING,
                VALIDATION_FAILED,
                MALFORMED_JSON,
            ),
        },
    )
    def enroll_contact(self, request, campaign_id=None):
        campaign = self.campaign()
        data = EnrollContactInputSerializer.validate_input(request.data)
        contact = get_or_not_found(
            Contact.objects.filter(account=request.user),
            data["contact_id"],
            code="contact_not_found",
            message="No contact with this id.",
        )
        enrollment = services.enrollment_enroll_contact(
            campaign=campaign, contact=contact, batch_number=data["batch_number"], priority=data["priority"]
        )
        return Response(EnrolledContactSerializer(enrollment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="List a campaign's enrollments",
        description="Filterable by `status` and `batch_number`; ordered by created_at (priority enrollments first).",
        parameters=[
            OpenApiParameter("status", enum=[s.value for s in listing.Enrollment.Status]),
            OpenApiParameter("batch_number", {"type": "integer", "minimum": 0, "maximum": INTEGER_MAX}),
        ],
        responses={200: EnrollmentSerializer(many=True), **error_responses(CAMPAIGN_NOT_FOUND, VALIDATION_FAILED)},
        filters=False,
    )
    def enrollments(self, request, campaign_id=None):
        self.keyset_fields = ("created_at", "id")
        queryset = listing.EnrollmentFilter(request.query_params, listing.enrollment_list(campaign=self.campaign()))
        return self.paginated(self.filtered(queryset), EnrollmentSerializer)

    @extend_schema(
        summary="Replies audit",
        description="Replied enrollments, newest reply first, with `hours_to_reply` from the step-1 send.",
        responses={200: ReplySerializer(many=True), **error_responses(CAMPAIGN_NOT_FOUND, VALIDATION_FAILED)},
    )
    def replies(self, request, campaign_id=None):
        self.keyset_fields = ("-replied_at", "-id")
        return self.paginated(listing.enrollment_reply_list(campaign=self.campaign()), ReplySerializer)

    @extend_schema(
        summary="Skips audit",
        description="Contacts an enroll left out, newest first. `kind` ∈ mx_invalid, cross_campaign_duplicate, "
        "already_enrolled.",
        parameters=[OpenApiParameter("kind", enum=[k.value for k in listing.EnrollmentSkip.Kind])],
        responses={200: SkipSerializer(many=True), **error_responses(CAMPAIGN_NOT_FOUND, VALIDATION_FAILED)},
        filters=False,
    )
    def skips(self, request, campaign_id=None):
        self.keyset_fields = ("-created_at", "-id")
        queryset = listing.SkipFilter(request.query_params, listing.enrollment_skip_list(campaign=self.campaign()))
        return self.paginated(self.filtered(queryset), SkipSerializer)
