"""Reads for contacts and imports, always scoped to one account."""

import django_filters
from django.db.models import QuerySet

from accounts.models import Account

from .models import Contact, ContactImport


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
