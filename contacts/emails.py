"""Email address syntax, as the `email-validator` package judges it (no network).

`validate_email` costs ~50 µs; an import of 100,000 rows would spend seconds
in it. The common shape (an ASCII dot-atom local part) is checked by a regex
and its domain by email-validator once per distinct domain; anything else
goes through the full `validate_email`. Both paths give the same verdict
(tests/contacts/test_emails.py compares them).
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from .models import EMAIL_MAX_LENGTH

_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]"
_SIMPLE_ADDRESS = re.compile(rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@([a-z0-9.-]+)")
LOCAL_PART_MAX_LENGTH = 64


class InvalidEmail(ValueError):
    """The address is not valid; the message says why, for the caller's report."""


@lru_cache(maxsize=65536)
def _domain_error(domain: str) -> str | None:
    try:
        validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def normalize_email(raw: object) -> str:
    """The trimmed, lowercased address, or InvalidEmail saying what is wrong."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidEmail("The email address is missing.")
    email = raw.strip().lower()
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidEmail(f"The email address is longer than {EMAIL_MAX_LENGTH} characters.")
    match = _SIMPLE_ADDRESS.fullmatch(email)
    if match and len(match.group(1)) <= LOCAL_PART_MAX_LENGTH:
        error = _domain_error(match.group(2))
        if error:
            raise InvalidEmail(error)
        return email
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
