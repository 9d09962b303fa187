"""Merge tags: checking templates and rendering a step for one contact.

A pure module (no database): the API's preview and the sending engine both
call `render_step(step, contact)`, so what an operator previews is what the
recipient gets.

Tags: `{{first_name}}`, `{{last_name}}`, `{{email}}`, `{{company}}` and
`{{custom.<key>}}` (a key of the contact's `custom_fields`), each with an
optional fallback for an empty value: `{{first_name|there}}`. Spaces inside
the braces are allowed. Any other `{{…}}` is refused when the template is
saved (`validate_merge_tags`), so a typo never reaches a recipient.

Values are HTML-escaped in `body_html` (the fallback is part of the author's
template and is left as written); in the subject, line breaks and other
control characters become spaces, so no value can add a header.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Protocol

from django.core.exceptions import ValidationError

STANDARD_TAGS = ("first_name", "last_name", "email", "company")
CUSTOM_PREFIX = "custom."

# `{{ name }}` or `{{ name | fallback }}`; braces never nest.
_TAG = re.compile(r"\{\{(?P<inner>[^{}]*)\}\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


class Step(Protocol):
    subject: str
    body_html: str
    body_text: str


@dataclass(frozen=True)
class RenderedStep:
    subject: str
    html: str
    text: str


def _parse(inner: str) -> tuple[str, str | None]:
    name, bar, fallback = inner.partition("|")
    return name.strip(), (fallback.strip() if bar else None)


def _is_known(name: str) -> bool:
    if name in STANDARD_TAGS:
        return True
    return name.startswith(CUSTOM_PREFIX) and bool(name[len(CUSTOM_PREFIX) :].strip())


def unknown_merge_tags(template: str) -> list[str]:
    """The tags of `template` that are not supported, as written (`{{frist_name}}`), in order."""
    unknown = []
    for match in _TAG.finditer(template or ""):
        name, _ = _parse(match.group("inner"))
        if not _is_known(name) and match.group(0) not in unknown:
            unknown.append(match.group(0))
    rest = _TAG.sub("", template or "")
    if "{{" in rest:
        unknown.append("{{" + rest.split("{{", 1)[1][:30])  # an unclosed tag
    return unknown


def validate_merge_tags(template: str) -> None:
    """Field validator: raises `ValidationError` naming every unsupported tag."""
    unknown = unknown_merge_tags(template)
    if unknown:
        allowed = ", ".join(f"{{{{{t}}}}}" for t in STANDARD_TAGS)
        raise ValidationError(
            f"Unknown merge tag {', '.join(unknown)}; use {allowed} or {{{{custom.<key>}}}}.",
            code="unknown_merge_tag",
        )


def _stringify(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tag_value(name: str, contact: Any) -> str:
    """The contact's value for tag `name` ("" when missing)."""
    if name in STANDARD_TAGS:
        return _stringify(getattr(contact, name, ""))
    key = name[len(CUSTOM_PREFIX) :].strip()
    custom = getattr(contact, "custom_fields", None) or {}
    if key in custom:
        return _stringify(custom[key])
    folded = {str(k).casefold(): v for k, v in custom.items()}
    return _stringify(folded.get(key.casefold()))


def render(template: str, contact: Any, *, escape: bool) -> str:
    """Replace every tag with the contact's value (or its fallback when empty)."""

    def substitute(match: re.Match) -> str:
        name, fallback = _parse(match.group("inner"))
        if not _is_known(name):
            return match.group(0)  # refused at save time; never guessed at here
        value = tag_value(name, contact)
        if not value.strip():
            return fallback or ""
        return html.escape(value) if escape else value

    return _TAG.sub(substitute, template or "")


def header_safe(value: str) -> str:
    """One line: control characters (CR, LF, tabs…) become single spaces."""
    return _CONTROL.sub(" ", value).strip()


def render_subject(template: str, contact: Any) -> str:
    return header_safe(render(template, contact, escape=False))


class _TextExtractor(HTMLParser):
    """HTML to readable plain text: block elements break lines, links keep their URL."""

    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr"})
    SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.hrefs: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href"))

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "a" and self.hrefs:
            href = self.hrefs.pop()
            if href and not href.startswith(("#", "mailto:")):
                self.parts.append(f" ({href})")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(body_html: str) -> str:
    parser = _TextExtractor()
    parser.feed(body_html or "")
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def render_step(step: Step, contact: Any) -> RenderedStep:
    """Subject, HTML and plain-text bodies of `step` for `contact`.

    The text body is `body_text` rendered, or, when that is empty, derived
    from the rendered HTML.
    """
    body_html = render(step.body_html, contact, escape=True)
    has_text = bool((step.body_text or "").strip())
    text = render(step.body_text, contact, escape=False) if has_text else html_to_text(body_html)
    return RenderedStep(subject=render_subject(step.subject, contact), html=body_html, text=text)
