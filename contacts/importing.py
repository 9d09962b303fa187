"""Reading, validating and bulk-writing contact imports.

Validation happens before anything is written, so a file that turns out not
to be CSV half-way through leaves nothing behind. The write is set-based:
the rows are COPYed into a temporary table and upserted with one
`INSERT … SELECT … ON CONFLICT` that also links them to the import.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.db import connection
from django.utils import timezone

from core.errors import ValidationFailed
from core.ids import uuid7_strings

from .emails import InvalidEmail, normalize_email
from .models import NAME_MAX_LENGTH, ContactImport

PROFILE_COLUMNS = ("first_name", "last_name", "company", "linkedin_url")
CUSTOM_KEY_MAX_LENGTH = 100
CUSTOM_VALUE_MAX_LENGTH = 2000
PROGRESS_EVERY = 1000

# One validated contact: email, first_name, last_name, company, linkedin_url, custom fields.
Record = tuple[str, str, str, str, str, dict[str, str]]


class ImportFileError(ValidationFailed):
    """The upload as a whole cannot be read: nothing is written."""


def _file_error(code: str, message: str) -> ImportFileError:
    return ImportFileError(message, code=code, details={"file": [message]})


def _merge(previous: Record, new: Record) -> Record:
    """Two rows for one email: later non-empty values win, custom fields merge."""
    email = new[0]
    first, last, company, linkedin_url = (n or p for p, n in zip(previous[1:5], new[1:5], strict=True))
    return (email, first, last, company, linkedin_url, {**previous[5], **new[5]})


@dataclass
class ImportRows:
    """The rows of one import, as (row number, raw mapping) pairs, read lazily."""

    rows: Iterable[tuple[int, Any]]

    @classmethod
    def from_csv(cls, binary_file: IO[bytes]) -> ImportRows:
        """A CSV upload: a header row naming an `email` column, UTF-8 (a BOM is fine).

        Raises ImportFileError (422) for a file that is not CSV, is empty, or has
        no email column. Row numbers are the file's, the header being row 1.
        """
        text = io.TextIOWrapper(binary_file, encoding="utf-8-sig", newline="")
        reader = csv.reader(_checked_lines(text))
        try:
            header = next(reader, None)
        except UnicodeDecodeError:
            raise _file_error("csv_invalid", "The file is not a CSV file: it is not UTF-8 text.") from None
        except csv.Error as exc:
            raise _file_error("csv_invalid", f"The file is not a readable CSV file: {exc}.") from None
        if header is None or not any(cell.strip() for cell in header):
            raise _file_error("csv_empty", "The file is empty: it needs a header row and at least one contact.")
        columns = [cell.strip() for cell in header]
        lowered = [c.lower() for c in columns]
        if "email" not in lowered:
            raise _file_error(
                "csv_missing_email_column",
                "The CSV header has no 'email' column (found: " + ", ".join(c for c in columns if c) + ").",
            )
        return cls(rows=_csv_records(reader, columns, lowered))

    @classmethod
    def from_records(cls, records: Iterable[Any]) -> ImportRows:
        """A JSON import: objects with the CSV's columns as keys; rows numbered from 1."""
        return cls(rows=enumerate(records, start=1))

    def validate(self, *, progress: Callable[[int], None] | None = None) -> tuple[list[Record], list[dict], int]:
        """Returns (valid records, deduplicated by email; invalid rows; total rows)."""
        by_email: dict[str, Record] = {}
        invalid: list[dict[str, Any]] = []
        total = 0
        try:
            for row_number, raw in self.rows:
                total += 1
                if progress and total % PROGRESS_EVERY == 0:
                    progress(PROGRESS_EVERY)
                try:
                    record = _record(raw)
                except InvalidRow as exc:
                    invalid.append({"row": row_number, "email": exc.email, "reason": str(exc)})
                    continue
                previous = by_email.get(record[0])
                by_email[record[0]] = _merge(previous, record) if previous else record
        except UnicodeDecodeError:
            raise _file_error("csv_invalid", "The file is not a CSV file: it is not UTF-8 text.") from None
        except csv.Error as exc:
            raise _file_error("csv_invalid", f"The file is not a readable CSV file: {exc}.") from None
        if progress and total % PROGRESS_EVERY:
            progress(total % PROGRESS_EVERY)
        return list(by_email.values()), invalid, total


class InvalidRow(ValueError):
    def __init__(self, reason: str, email: str | None) -> None:
        super().__init__(reason)
        self.email = email


def _checked_lines(text: io.TextIOWrapper) -> Iterator[str]:
    for line in text:
        if "\x00" in line:
            raise csv.Error("it contains NUL bytes, so it is binary, not text")
        yield line


def _csv_records(reader: Iterator[list[str]], columns: list[str], lowered: list[str]) -> Iterator[tuple[int, Any]]:
    """(row number, Record or InvalidRow) for each non-blank data row.

    Built straight from column positions: this loop runs once per row of
    files with 100,000 rows, so it avoids an intermediate dict per row.
    """
    width = len(columns)
    email_at = lowered.index("email")
    profile_at = [lowered.index(name) if name in lowered else None for name in PROFILE_COLUMNS]
    custom_at = [
        (position, name)
        for position, (name, key) in enumerate(zip(columns, lowered, strict=True))
        if name and key != "email" and key not in PROFILE_COLUMNS
    ]
    for index, cells in enumerate(reader, start=2):
        if len(cells) != width:
            if len(cells) > width and any(cell.strip() for cell in cells[width:]):
                email = cells[email_at].strip() or None
                yield index, InvalidRow(f"The row has {len(cells)} columns; the header has {width}.", email)
                continue
            cells = (cells + [""] * width)[:width]
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        yield index, _csv_record(cells, email_at, profile_at, custom_at)


def _csv_record(cells, email_at, profile_at, custom_at) -> Record | InvalidRow:
    raw_email = cells[email_at]
    try:
        email = normalize_email(raw_email)
    except InvalidEmail as exc:
        return InvalidRow(str(exc), raw_email.strip() or None)
    profile = []
    for name, position in zip(PROFILE_COLUMNS, profile_at, strict=True):
        value = cells[position].strip() if position is not None else ""
        if len(value) > NAME_MAX_LENGTH:
            return InvalidRow(f"{name} is longer than {NAME_MAX_LENGTH} characters.", email)
        profile.append(value)
    custom = {}
    for position, name in custom_at:
        value = cells[position]
        if value.strip():
            if len(value) > CUSTOM_VALUE_MAX_LENGTH:
                return InvalidRow(
                    f"The custom field {name} is longer than {CUSTOM_VALUE_MAX_LENGTH} characters.", email
                )
            custom[name] = value
    return (email, *profile, custom)


def _text(value: Any, name: str, email: str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise InvalidRow(f"{name} must be text.", email)
    text = str(value).strip()
    if len(text) > NAME_MAX_LENGTH:
        raise InvalidRow(f"{name} is longer than {NAME_MAX_LENGTH} characters.", email)
    return text


def _record(raw: Any) -> Record:
    """A validated Record from a CSV row (already one) or a JSON object."""
    if isinstance(raw, tuple):
        return raw
    if isinstance(raw, InvalidRow):
        raise raw
    if not isinstance(raw, dict):
        raise InvalidRow("The row is not an object.", None)
    raw_email = raw.get("email")
    shown_email = raw_email.strip() if isinstance(raw_email, str) else None
    try:
        email = normalize_email(raw_email)
    except InvalidEmail as exc:
        raise InvalidRow(str(exc), shown_email or None) from None
    profile = [_text(raw.get(name), name, email) for name in PROFILE_COLUMNS]
    custom = raw.get("custom_fields") or {}
    if not isinstance(custom, dict):
        raise InvalidRow("custom_fields must be an object.", email)
    extra = {k: v for k, v in raw.items() if k not in ("email", "custom_fields", *PROFILE_COLUMNS)}
    try:
        cleaned_custom = clean_custom_fields({**extra, **custom})
    except ValueError as exc:
        raise InvalidRow(str(exc), email) from None
    return (email, *profile, cleaned_custom)


def clean_custom_fields(custom: dict[Any, Any]) -> dict[str, str]:
    """Custom fields as `{{custom.<key>}}` merge tags use them: text values under trimmed keys.

    Numbers and booleans become text; empty keys and null values are left out.
    Raises ValueError (saying which field) for a nested value or an over-long
    key or value. Imports and the contacts API both clean with this.
    """
    cleaned = {}
    for key, value in custom.items():
        key = str(key).strip()
        if not key or value is None:
            continue
        if len(key) > CUSTOM_KEY_MAX_LENGTH:
            raise ValueError(f"The custom field name {key[:20]}… is longer than {CUSTOM_KEY_MAX_LENGTH}.")
        if isinstance(value, (dict, list)):
            raise ValueError(f"The custom field {key} must be text, a number or a boolean.")
        value = str(value)
        if len(value) > CUSTOM_VALUE_MAX_LENGTH:
            raise ValueError(f"The custom field {key} is longer than {CUSTOM_VALUE_MAX_LENGTH} characters.")
        cleaned[key] = value
    return cleaned


def upsert_import_contacts(*, contact_import: ContactImport, records: list[Record]) -> tuple[int, int]:
    """Create or update the records' contacts and link each to the import.

    Runs inside the caller's transaction. Returns (created, updated).
    """
    if not records:
        return 0, 0
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE contact_import_rows "
            "(id uuid, email text, first_name text, last_name text, company text, linkedin_url text, "
            "custom_fields jsonb) ON COMMIT DROP"
        )
        with cursor.copy("COPY contact_import_rows FROM STDIN") as copy:
            for start in range(0, len(records), COPY_CHUNK):
                chunk = records[start : start + COPY_CHUNK]
                copy.write("".join(map(_copy_line, uuid7_strings(len(chunk)), chunk)))
        cursor.execute(
            _UPSERT_SQL,
            {"account_id": contact_import.account_id, "import_id": contact_import.id, "now": timezone.now()},
        )
        created, updated = cursor.fetchone()
        cursor.execute("DROP TABLE contact_import_rows")
    return created, updated


_UPSERT_SQL = """
WITH upserted AS (
    INSERT INTO contacts_contact AS c
        (id, account_id, email, first_name, last_name, company, linkedin_url, custom_fields,
         subscribed, created_at, updated_at)
    SELECT r.id, %(account_id)s, r.email, r.first_name, r.last_name, r.company, r.linkedin_url,
           r.custom_fields, true, %(now)s, %(now)s
    FROM contact_import_rows r
    ON CONFLICT (account_id, email) DO UPDATE SET
        first_name = COALESCE(NULLIF(EXCLUDED.first_name, ''), c.first_name),
        last_name = COALESCE(NULLIF(EXCLUDED.last_name, ''), c.last_name),
        company = COALESCE(NULLIF(EXCLUDED.company, ''), c.company),
        linkedin_url = COALESCE(NULLIF(EXCLUDED.linkedin_url, ''), c.linkedin_url),
        custom_fields = c.custom_fields || EXCLUDED.custom_fields,
        updated_at = EXCLUDED.updated_at
    RETURNING c.id, (xmax = 0) AS inserted
), linked AS (
    INSERT INTO contacts_contactimportmember (contact_import_id, contact_id)
    SELECT %(import_id)s, id FROM upserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
"""


COPY_CHUNK = 5000
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_line(contact_id: str, record: Record) -> str:
    """One line of COPY's text format (psycopg's write_row costs 3x more per row)."""
    *texts, custom = record
    custom_json = json.dumps(custom, ensure_ascii=False) if custom else "{}"
    fields = (*texts, custom_json)
    return f"{contact_id}\t" + "\t".join(value.translate(_COPY_ESCAPES) for value in fields) + "\n"
