"""Reads for contacts and imports, always scoped to one account."""

import django_filters
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import Account

from .models import Contact, ContactImport, ContactList, ContactListMember


class ContactFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(method="filter_email", help_text="Exact address (case-insensitive).")
    subscribed = django_filters.BooleanFilter()
    updated_after = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gt", help_text="RFC 3339 timestamp; contacts changed after it."
    )

    class Meta:
        model = Contact
        fields = ["email", "subscribed", "updated_after"]

    def filter_email(self, queryset, name, value):
        return queryset.filter(email=value.strip().lower())


def contact_list(*, account: Account) -> QuerySet[Contact]:
    return Contact.objects.filter(account=account)


def contact_import_list(*, account: Account) -> QuerySet[ContactImport]:
    return ContactImport.objects.filter(account=account)


def _member_count() -> Coalesce:
    """A list's member count as a correlated subquery: computed for the rows of the page only, from the
    (contact_list, contact) unique index, where a JOIN … GROUP BY would count every list of the account."""
    members = (
        ContactListMember.objects.filter(contact_list=OuterRef("pk"))
        .order_by()
        .values("contact_list")
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(members, output_field=IntegerField()), 0)


def contact_list_list(*, account: Account, member_count: bool = False) -> QuerySet[ContactList]:
    """The account's lists; with `member_count=True` each is annotated with its `member_count`."""
    queryset = ContactList.objects.filter(account=account)
    return contact_list_with_member_count(queryset) if member_count else queryset


def contact_list_with_member_count(queryset: QuerySet[ContactList]) -> QuerySet[ContactList]:
    """`queryset` annotated with `member_count`, in the same query (the API's lists, the admin's changelist)."""
    return queryset.annotate(member_count=_member_count())


def contact_list_member_list(*, contact_list: ContactList) -> QuerySet[ContactListMember]:
    """The list's memberships with their contacts, to be paged on (created_at, id): the order they were added."""
    return ContactListMember.objects.filter(contact_list=contact_list).select_related("contact")
