"""The base of the workflow endpoints under /api/campaigns/{campaign_id}/… (enrollment, sending)."""

from campaigns.models import Campaign
from campaigns.selectors import campaign_list
from core.lookups import get_or_not_found
from core.viewsets import AccountScopedViewSet

CAMPAIGN_PATH = r"^campaigns/(?P<campaign_id>[^/]+)"


class CampaignActionViewSet(AccountScopedViewSet):
    """Handlers act on `self.campaign()`: the caller's campaign, or 404 `campaign_not_found`."""

    def campaign(self) -> Campaign:
        return get_or_not_found(
            campaign_list(account=self.request.user).select_related("account"),
            self.kwargs["campaign_id"],
            code="campaign_not_found",
            message="No campaign with this id.",
        )
