"""Pages of a list: by number or after a cursor, in a chosen order, with headers that say so.

Every list (students, courses, a course's roster and waitlist) answers one
page of rows in a total order: the sort keys the client chose (``sort``, or the
list's default), then ``id``, which no two rows share. A page is asked for in
one of two ways:

- ``page`` (from 1) and ``page_size``: an ``OFFSET``, whose cost grows with the
  page number;
- ``after`` and ``page_size``: a keyset cursor naming the last row already
  seen (its sort keys and id). The page starts right after that row through
  the index, whatever its depth, and rows inserted or deleted meanwhile never
  shift it: following ``next`` cursors visits every row that stays in the
  list exactly once.

The cursor is opaque to clients: base64url of a JSON array holding the sort it
was made for and the row's key values. A cursor that does not decode, was made
for another sort, or holds values of the wrong types is a 422.

Each page answers two headers:

- ``X-Pagination``: JSON with ``total``, ``total_pages``, ``first_page``,
  ``last_page`` and, for numbered pages, ``page``, ``previous_page`` and
  ``next_page`` where they exist (``app.queries.count_rows`` says how
  ``total`` is counted, and when it is an estimate marked
  ``"total_estimated": true``);
- ``Link`` (RFC 8288): ``first`` and ``last`` (page numbers), ``prev`` (the
  page number before, for numbered pages past the first) and ``next``,
  which is always the cursor form, since an index seek costs the same at any
  depth where an ``OFFSET`` does not. Every other query parameter is kept.
  ``next`` is left out on the last page.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import request

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# The column every order ends with: unique, so the order is total.
TIEBREAKER = "id"


@dataclass(frozen=True)
class SortKey:
    """One key of an order: a field of the listed representation, and its direction."""

    field: str
    descending: bool = False

    def __str__(self) -> str:
        return f"-{self.field}" if self.descending else self.field


@dataclass(frozen=True)
class Paging:
    """What the client asked for: which page, how big, in which order."""

    page_size: int = PAGE_SIZE
    page: int | None = None
    sort: tuple[SortKey, ...] = ()
    # The key values (sort keys, then id) of the row the page starts after.
    after: tuple | None = None

    @property
    def keys(self) -> tuple[SortKey, ...]:
        """The whole order: the sort keys, then the tiebreaker (ascending) unless it is one."""
        if any(key.field == TIEBREAKER for key in self.sort):
            return self.sort
        return (*self.sort, SortKey(TIEBREAKER))

    @property
    def offset(self) -> int:
        """The number of rows before a numbered page (0 for a cursor page)."""
        return 0 if self.page is None else (self.page - 1) * self.page_size


def sort_text(sort: tuple[SortKey, ...]) -> str:
    """The ``sort`` parameter that asks for ``sort``."""
    return ",".join(str(key) for key in sort)


def parse_sort(text: str, allowed: tuple[str, ...]) -> tuple[SortKey, ...]:
    """The keys of a ``sort`` parameter (``name,-created_at``); ValueError names the allowed."""
    keys = []
    for part in text.split(","):
        key = SortKey(part[1:], descending=True) if part.startswith("-") else SortKey(part)
        if key.field not in allowed:
            choices = ", ".join(allowed)
            raise ValueError(
                f"Cannot sort by {json.dumps(part.lstrip('-'))}: sort by {choices}, "
                "comma-separated, each with a leading - for descending."
            )
        if any(seen.field == key.field for seen in keys):
            raise ValueError(f"{json.dumps(key.field)} is named twice in sort.")
        keys.append(key)
    return tuple(keys)


def _plain(value):
    """A key value as JSON holds it."""
    return value.isoformat() if isinstance(value, datetime) else value


def encode_cursor(sort: tuple[SortKey, ...], values: tuple) -> str:
    """The opaque cursor naming the row whose key values are ``values``, in ``sort``."""
    document = json.dumps([sort_text(sort), *map(_plain, values)], separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def _typed(value, kind: type):
    """``value`` read back as ``kind``; ValueError when it is not one a column could hold."""
    if kind is datetime and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive time")
        # Stored in UTC: a time that cannot be converted is no column's value.
        return moment.astimezone(UTC)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError("not an integer")
    if kind is int and not -(2**63) <= value < 2**63:
        raise ValueError("beyond 64 bits")
    if kind is str and not isinstance(value, str):
        raise ValueError("not a string")
    if kind not in (datetime, int, str):
        raise ValueError("unsupported key")
    return value


def decode_cursor(cursor: str, sort: tuple[SortKey, ...], kinds: dict[str, type]) -> tuple:
    """The key values a cursor made for ``sort`` holds; ValueError when it is not such a cursor.

    ``kinds`` gives the Python type of each field of the order.
    """
    keys = Paging(sort=sort).keys
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise ValueError("This cursor is not one this API made.") from error
    if not isinstance(document, list) or len(document) != len(keys) + 1:
        raise ValueError("This cursor is not one this API made.")
    if document[0] != sort_text(sort):
        raise ValueError("This cursor was made for another sort; keep the sort it was made for.")
    try:
        return tuple(
            _typed(value, kinds[key.field]) for key, value in zip(keys, document[1:], strict=True)
        )
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError("This cursor is not one this API made.") from error


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows, how it was asked for, and what is known of the rest."""

    items: list[dict]
    paging: Paging
    total: int
    total_estimated: bool = False
    # The cursor of the page that follows, None on the last page.
    next_after: str | None = None

    @property
    def last_page(self) -> int:
        """The number of the last page (0 when the list is empty)."""
        return -(-self.total // self.paging.page_size)

    def metadata(self) -> dict:
        """The ``X-Pagination`` object."""
        meta = {"total": self.total, "total_pages": self.last_page}
        if self.total_estimated:
            meta["total_estimated"] = True
        if self.total:
            meta.update(first_page=1, last_page=self.last_page)
            number = self.paging.page
            if number is not None and number <= self.last_page:
                meta["page"] = number
                if number > 1:
                    meta["previous_page"] = number - 1
                if number < self.last_page:
                    meta["next_page"] = number + 1
        return meta

    def links(self) -> dict[str, str]:
        """The ``Link`` targets by relation, keeping every other query parameter."""
        links = {"first": _url(page=1)}
        if self.last_page:
            links["last"] = _url(page=self.last_page)
        number = self.paging.page
        if number is not None and number > 1:
            links["prev"] = _url(page=min(number - 1, max(self.last_page, 1)))
        if self.next_after is not None:
            links["next"] = _url(after=self.next_after)
        return links

    def headers(self) -> dict[str, str]:
        """The headers that describe this page."""
        return {
            "X-Pagination": json.dumps(self.metadata()),
            "Link": ", ".join(f'<{url}>; rel="{rel}"' for rel, url in self.links().items()),
        }


def _url(**changes) -> str:
    """The request's path and query, with ``page`` or ``after`` (not both) set to ``changes``."""
    kept = [
        (name, value)
        for name, value in request.args.items(multi=True)
        if name not in ("page", "after")
    ]
    return f"{request.path}?{urlencode([*kept, *changes.items()])}"


# How the spec documents the headers of a page.
PAGE_HEADERS = {
    "X-Pagination": "PAGINATION",
    "Link": {
        "description": 'RFC 8288 links to the "first", "last" and previous ("prev", numbered '
        'pages only) pages by number, and to the "next" page by cursor (absent on the last '
        "page); every other query parameter is kept",
        "schema": {"type": "string"},
    },
}
