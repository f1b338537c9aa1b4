"""Marshmallow schemas: input schemas validate, output schemas document and dump.

Input schemas reject unknown fields (marshmallow's default; query parameters too,
see ``app.bodies.JsonBodyParser``) and mirror every
column limit, so nothing PostgreSQL would refuse reaches the database.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

import marshmallow as ma
from marshmallow import fields, utils, validate
from marshmallow.decorators import POST_DUMP, PRE_DUMP

from app.models import (
    CODE_MAX,
    DESCRIPTION_MAX,
    EMAIL_MAX,
    EXTERNAL_ID_MAX,
    INT32_MAX,
    NAME_MAX,
    TITLE_MAX,
    Status,
)
from app.pages import MAX_PAGE_SIZE, PAGE_SIZE, Paging, SortKey, decode_cursor, parse_sort

MAX_COURSE_IDS = 100
QUERY_MAX = 254
NO_NUL_PATTERN = r"^[^\x00]*$"
NOT_BLANK_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"
# Printable ASCII without spaces: student numbers and identity-provider subjects.
EXTERNAL_ID_PATTERN = rf"^[!-~]{{1,{EXTERNAL_ID_MAX}}}$"
# Far enough from datetime's limits that converting to UTC can never overflow.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


# --- output schemas dump through a plan made from their fields ----------------

_ABSENT = object()


def _field_converter(field: fields.Field) -> tuple[Callable, type | None]:
    """What ``field`` does to a present, non-null value when it dumps it (marshmallow's own code).

    With it, the type of value it hands back unchanged (an ``int`` for an
    integer, a ``str`` for a string), which the dump then keeps without a call.
    Only the field types the output schemas use are known; any other stops the
    app from starting rather than dumping differently.
    """
    if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
        nested = field.inner.schema
        if not isinstance(nested, OutputSchema) or nested.many or field.inner.many:
            raise TypeError(f"no fast dump for a list of {type(nested).__name__}")
        dump_one = nested.dump_one
        return (lambda items: [None if item is None else dump_one(item) for item in items]), None
    if isinstance(field, fields.DateTime) and field.format in field.SERIALIZATION_FUNCS:
        return field.SERIALIZATION_FUNCS[field.format], None
    if type(field) is fields.Integer and not field.as_string:
        return field.num_type, field.num_type
    if type(field) is fields.String:
        return utils.ensure_text_type, str
    raise TypeError(f"no fast dump for a {type(field).__name__} field")


class OutputSchema(ma.Schema):
    """A representation that documents a response and dumps it without marshmallow's machinery.

    The read queries hand over dicts keyed by field name. For those, ``dump``
    follows a plan made once from the schema's own fields (each field's key,
    and the very function marshmallow applies to its value), so the result is
    exactly ``Schema.dump``'s, at a fraction of the cost
    (``tests/test_fast_dump.py`` compares them). Anything else (an object, a
    schema with dump hooks) is dumped by marshmallow.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plan = None
        if not (self._hooks[PRE_DUMP] or self._hooks[POST_DUMP]):
            self._plan = tuple(
                self._plan_step(name, field) for name, field in self.dump_fields.items()
            )

    @staticmethod
    def _plan_step(name: str, field: fields.Field) -> tuple[str, str, Callable, type | None]:
        """(output key, row key, converter, type kept as it is) for one field."""
        if field.dump_default is not ma.missing or "." in (field.attribute or ""):
            raise TypeError(f"no fast dump for field {name!r} (a default or a dotted attribute)")
        return (field.data_key or name, field.attribute or name, *_field_converter(field))

    def dump_one(self, row) -> dict:
        """One row's representation (``Schema.dump`` of one object)."""
        if self._plan is None or type(row) is not dict:
            return super().dump(row, many=False)
        dumped = {}
        for key, source, convert, kept in self._plan:
            value = row.get(source, _ABSENT)
            if value is None or type(value) is kept:
                dumped[key] = value
            elif value is not _ABSENT:
                dumped[key] = convert(value)
        return dumped

    def dump(self, obj, *, many: bool | None = None):
        """``Schema.dump``, through the plan for dict rows."""
        many = self.many if many is None else bool(many)
        if self._plan is None or (many and type(obj) is not list):
            return super().dump(obj, many=many)
        if many:
            return [self.dump_one(row) for row in obj]
        return self.dump_one(obj)


class CleanString(fields.String):
    """A trimmed string free of NUL characters and lone surrogates."""

    default_error_messages = {
        "nul": "Must not contain NUL characters.",
        "encoding": "Must be valid Unicode text.",
        "blank": "Must not be blank.",
        "too_long": "Longer than maximum length {max_length}.",
    }

    def __init__(self, *, min_length: int = 1, max_length: int, **kwargs):
        # The documented pattern says what the checks below enforce: no NUL, and
        # (when required) one character that is not whitespace.
        pattern = NOT_BLANK_PATTERN if min_length else NO_NUL_PATTERN
        kwargs["metadata"] = {"pattern": pattern, **kwargs.get("metadata", {})}
        super().__init__(validate=validate.Length(min=min_length, max=max_length), **kwargs)
        self.min_length = min_length
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        # The limit applies to the text as sent, as the spec's maxLength says.
        if len(text) > self.max_length:
            raise self.make_error("too_long", max_length=self.max_length)
        if "\x00" in text:
            raise self.make_error("nul")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise self.make_error("encoding") from error
        text = text.strip()
        if not text and self.min_length:
            raise self.make_error("blank")
        return text


class BoundedList(fields.List):
    """A list refused on its length before any element is deserialized.

    ``validate.Length`` on a plain ``List`` runs after every element has been
    checked: a 1 MiB body of half a million ids would cost seconds of CPU.
    """

    default_error_messages = {"length": "Must have between {min} and {max} items."}

    def __init__(self, cls_or_instance, *, min_length: int, max_length: int, **kwargs):
        kwargs["metadata"] = {
            "minItems": min_length,
            "maxItems": max_length,
            **kwargs.get("metadata", {}),
        }
        super().__init__(cls_or_instance, **kwargs)
        self.min_length = min_length
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, list) and not self.min_length <= len(value) <= self.max_length:
            raise self.make_error("length", min=self.min_length, max=self.max_length)
        return super()._deserialize(value, attr, data, **kwargs)


class Id(fields.Integer):
    """A positive 32-bit integer id; floats, booleans and strings are refused."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, validate=validate.Range(min=1, max=INT32_MAX), **kwargs)


class Count(fields.Integer):
    """A count from 0 to the 32-bit limit; floats, booleans and strings are refused."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, validate=validate.Range(min=0, max=INT32_MAX), **kwargs)


class Moment(fields.AwareDateTime):
    """An ISO 8601 date and time with its UTC offset, between the years 1900 and 9000."""

    def __init__(self, **kwargs):
        super().__init__(validate=validate.Range(min=EARLIEST, max=LATEST), **kwargs)


class Flag(fields.Boolean):
    """A JSON ``true`` or ``false`` (in a query string: ``true`` or ``false``)."""

    def __init__(self, *, query: bool = False, **kwargs):
        truthy, falsy = ({"true"}, {"false"}) if query else ({True}, {False})
        super().__init__(truthy=truthy, falsy=falsy, load_default=False, **kwargs)
        self.sent_as = str if query else bool

    def _deserialize(self, value, attr, data, **kwargs):
        # 1 == True in Python: without the type check 1 and 0 would pass as booleans.
        if not isinstance(value, self.sent_as):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class Email(fields.Email):
    """An email address, trimmed and lower-cased (so uniqueness ignores case)."""

    def __init__(self, **kwargs):
        super().__init__(validate=validate.Length(max=EMAIL_MAX), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if "\x00" in value:
                raise self.make_error("invalid")
            value = value.strip()
        return super()._deserialize(value, attr, data, **kwargs).lower()


class CourseCode(CleanString):
    """A course code such as ``CS101``, stored upper-cased."""

    def __init__(self, **kwargs):
        super().__init__(max_length=CODE_MAX, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs)
        # Letter by letter, keeping those whose capital is longer ("ß" -> "SS"), so
        # the stored code is exactly as long as the validated one.
        return "".join(
            capital if len(capital) == 1 else letter
            for letter, capital in ((letter, letter.upper()) for letter in code)
        )


class ExternalId(fields.String):
    """A student's ``external_id``: 1 to 64 printable ASCII characters, no spaces, or null."""

    def __init__(self, **kwargs):
        super().__init__(
            allow_none=True,
            validate=validate.Regexp(
                EXTERNAL_ID_PATTERN,
                error=f"Must be 1 to {EXTERNAL_ID_MAX} printable ASCII characters without spaces.",
            ),
            metadata={
                "description": "The institution's student number or the identity provider's "
                "subject (sub); a student token with this sub acts as this student. "
                "Null when no login is tied to the student.",
                "pattern": EXTERNAL_ID_PATTERN,
                "maxLength": EXTERNAL_ID_MAX,
                "minLength": 1,
            },
            **kwargs,
        )


class Representation(OutputSchema):
    """An output schema: every field is in every answer, null where it allows none.

    Its fields are documented as ``required`` (and ``nullable`` where they
    allow none), so a client generated from the spec types ``student.id`` as a
    number, not as a number that may be missing.
    """

    def on_bind_field(self, field_name, field_obj):
        """Mark each field required: the dump always writes it (public marshmallow hook)."""
        field_obj.required = True


# --- students -----------------------------------------------------------------


class StudentCreateSchema(ma.Schema):
    """Body of ``POST /students``."""

    name = CleanString(required=True, max_length=NAME_MAX)
    email = Email(required=True)
    external_id = ExternalId()


class StudentUpdateSchema(ma.Schema):
    """Body of ``PATCH /students/{id}``: any subset of the fields."""

    name = CleanString(max_length=NAME_MAX)
    email = Email()
    external_id = ExternalId()


class Sort(fields.String):
    """The ``sort`` parameter: fields of an allow-list, comma-separated, ``-`` for descending."""

    def __init__(self, allowed: tuple[str, ...], **kwargs):
        choices = ", ".join(allowed)
        description = (
            f"Order by these fields, comma-separated, each with a leading - for descending "
            f"(any of {choices}, each at most once); ties are broken by id"
        )
        key = f"-?({'|'.join(allowed)})"
        super().__init__(
            validate=validate.Length(max=QUERY_MAX),
            metadata={
                "description": description,
                "example": f"-{allowed[-1]},id",
                "pattern": f"^{key}(,{key})*$",
            },
            **kwargs,
        )
        self.allowed = allowed

    def _deserialize(self, value, attr, data, **kwargs) -> tuple[SortKey, ...]:
        """The sort keys; an unknown or repeated field is a validation error."""
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_sort(text, self.allowed)
        except ValueError as error:
            raise ma.ValidationError(str(error)) from error


class ListQuerySchema(ma.Schema):
    """Query of a list: a page by number or after a cursor, its size (see ``app/pages.py``).

    Loads into ``{"paging": Paging, ...the list's filters}``. Subclasses name
    the Python type of every field their order can hold (``KEYS``, the
    tiebreaker ``id`` included) and their default order.
    """

    KEYS: ClassVar[dict[str, type]] = {"id": int}
    DEFAULT_SORT: ClassVar[tuple[SortKey, ...]] = ()

    page = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "Page number, from 1 (default 1; not with after)"},
    )
    page_size = fields.Integer(
        load_default=PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Rows per page, 1 to {MAX_PAGE_SIZE}"},
    )
    after = fields.String(
        validate=validate.Length(min=1, max=2 * QUERY_MAX),
        metadata={
            "description": "Opaque cursor from the next link: the page that follows the row "
            "it names, by an index seek at any depth (not with page; keep the same sort)"
        },
    )

    @ma.post_load
    def make_paging(self, data: dict, **kwargs) -> dict:
        """Gather the page, its size, the order and the cursor into one ``Paging``."""
        sort = data.pop("sort", None) or self.DEFAULT_SORT
        after, page = data.pop("after", None), data.pop("page", None)
        values = None
        if after is not None:
            if page is not None:
                raise ma.ValidationError(
                    "Ask for a page by number or after a cursor, not both.", "after"
                )
            try:
                values = decode_cursor(after, sort, self.KEYS)
            except ValueError as error:
                raise ma.ValidationError(str(error), "after") from error
        elif page is None:
            page = 1
        page_size = data.pop("page_size")
        data["paging"] = Paging(page_size=page_size, page=page, sort=sort, after=values)
        return data


class StudentQuerySchema(ListQuerySchema):
    """Query of ``GET /students``: the page, the order and the filter."""

    KEYS: ClassVar[dict[str, type]] = {"id": int, "name": str, "email": str, "created_at": datetime}

    sort = Sort(tuple(KEYS))
    q = CleanString(
        max_length=QUERY_MAX,
        metadata={"description": "Case-insensitive match on name or email"},
    )


class EnrolledCourseSummarySchema(Representation):
    """A course as nested in a student."""

    id = fields.Integer(dump_only=True)
    code = fields.String(dump_only=True)
    title = fields.String(dump_only=True)
    enrolled_at = fields.AwareDateTime(dump_only=True)


class WaitlistedCourseSummarySchema(Representation):
    """A course a student is waiting for, as nested in a student."""

    id = fields.Integer(dump_only=True)
    code = fields.String(dump_only=True)
    title = fields.String(dump_only=True)
    waitlisted_at = fields.AwareDateTime(dump_only=True)
    position = fields.Integer(
        dump_only=True, metadata={"description": "Place on the waitlist; 1 is promoted next"}
    )


class StudentSchema(Representation):
    """The full student representation."""

    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    external_id = fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "The student's login identity (see the request field)"},
    )
    created_at = fields.AwareDateTime(dump_only=True)
    courses = fields.List(
        fields.Nested(EnrolledCourseSummarySchema),
        dump_only=True,
        metadata={"description": "The courses the student is enrolled in, ordered by code"},
    )
    waitlist = fields.List(
        fields.Nested(WaitlistedCourseSummarySchema),
        dump_only=True,
        metadata={"description": "The courses the student is waiting for, ordered by code"},
    )


# --- courses ------------------------------------------------------------------


class CourseCreateSchema(ma.Schema):
    """Body of ``POST /courses``."""

    code = CourseCode(required=True)
    title = CleanString(required=True, max_length=TITLE_MAX)
    description = CleanString(min_length=0, max_length=DESCRIPTION_MAX, allow_none=True)
    capacity = Id(
        allow_none=True,
        metadata={"description": "Seat limit; null means unlimited"},
    )
    waitlist_capacity = Count(
        allow_none=True,
        metadata={
            "description": "Waitlist places; 0 (the default) means no waitlist, null no limit"
        },
    )
    enrollment_opens_at = Moment(
        allow_none=True,
        metadata={"description": "Enrollment opens at this time; null means open already"},
    )
    enrollment_closes_at = Moment(
        allow_none=True,
        metadata={"description": "Enrollment closes at this time; null means never"},
    )
    drop_deadline = Moment(
        allow_none=True,
        metadata={"description": "Drops are refused after this time; null means always allowed"},
    )


class CourseUpdateSchema(CourseCreateSchema):
    """Body of ``PATCH /courses/{id}``: any subset of the fields."""

    code = CourseCode()
    title = CleanString(max_length=TITLE_MAX)


class CourseQuerySchema(ListQuerySchema):
    """Query of ``GET /courses``: the page, the order and the filter."""

    KEYS: ClassVar[dict[str, type]] = {"id": int, "code": str, "title": str, "created_at": datetime}
    DEFAULT_SORT = (SortKey("code"),)

    sort = Sort(tuple(KEYS))
    q = CleanString(
        max_length=QUERY_MAX,
        metadata={"description": "Case-insensitive match on code or title"},
    )


class CourseSchema(Representation):
    """The full course representation."""

    id = fields.Integer(dump_only=True)
    code = fields.String(dump_only=True)
    title = fields.String(dump_only=True)
    description = fields.String(dump_only=True, allow_none=True)
    capacity = fields.Integer(dump_only=True, allow_none=True)
    waitlist_capacity = fields.Integer(dump_only=True, allow_none=True)
    enrollment_opens_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    enrollment_closes_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    drop_deadline = fields.AwareDateTime(dump_only=True, allow_none=True)
    enrolled_count = fields.Integer(
        dump_only=True, metadata={"description": "Students enrolled (not waiting, not dropped)"}
    )
    waitlist_count = fields.Integer(dump_only=True, metadata={"description": "Students waiting"})
    seats_left = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Free seats; null when the capacity is unlimited"},
    )
    created_at = fields.AwareDateTime(dump_only=True)


class StudentCourseSchema(CourseSchema):
    """A course of one student: the course representation plus ``enrolled_at``."""

    enrolled_at = fields.AwareDateTime(dump_only=True)


class RosterEntrySchema(Representation):
    """A student enrolled in a course."""

    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    enrolled_at = fields.AwareDateTime(dump_only=True)


class RosterQuerySchema(ListQuerySchema):
    """Query of ``GET /courses/{id}/students``: the page and the order."""

    KEYS: ClassVar[dict[str, type]] = {
        "id": int,
        "name": str,
        "email": str,
        "enrolled_at": datetime,
    }
    DEFAULT_SORT = (SortKey("name"),)

    sort = Sort(tuple(KEYS))


class WaitlistQuerySchema(ListQuerySchema):
    """Query of ``GET /courses/{id}/waitlist``: the page, always in promotion order."""

    KEYS: ClassVar[dict[str, type]] = {"id": int, "waitlisted_at": datetime}
    DEFAULT_SORT = (SortKey("waitlisted_at"),)


class WaitlistEntrySchema(Representation):
    """A student waiting for a course."""

    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    waitlisted_at = fields.AwareDateTime(dump_only=True)
    position = fields.Integer(
        dump_only=True, metadata={"description": "Place on the waitlist; 1 is promoted next"}
    )


# --- enrollment ---------------------------------------------------------------


WAITLIST_DESCRIPTION = "Wait for a full course instead of a 409, when its waitlist has room"
OVERRIDE_DESCRIPTION = (
    "Enroll past capacity and outside the enrollment window (registrar and admin only)"
)


class EnrollmentRequestSchema(ma.Schema):
    """Body of ``POST /students/{id}/courses``."""

    course_ids = BoundedList(
        Id(),
        required=True,
        min_length=1,
        max_length=MAX_COURSE_IDS,
        metadata={"description": "1 to 100 course ids; repeats count once"},
    )
    waitlist = Flag(metadata={"description": WAITLIST_DESCRIPTION})
    override = Flag(metadata={"description": OVERRIDE_DESCRIPTION})


class CourseIdSchema(ma.Schema):
    """Body of ``POST /students/{id}/enroll``."""

    course_id = Id(required=True)
    waitlist = Flag(metadata={"description": WAITLIST_DESCRIPTION})
    override = Flag(metadata={"description": OVERRIDE_DESCRIPTION})


class EnrollPairSchema(CourseIdSchema):
    """Body of ``POST /enroll``."""

    student_id = Id(required=True)


class DropQuerySchema(ma.Schema):
    """Query of ``DELETE /students/{id}/courses/{course_id}``."""

    override = Flag(
        query=True,
        metadata={"description": "Drop after the drop deadline (registrar and admin only)"},
    )


class EnrollmentQuerySchema(ma.Schema):
    """Filters of ``GET /students/{id}/enrollments``."""

    status = fields.String(
        validate=validate.OneOf(list(Status)),
        metadata={"description": "Only the enrollments in this status"},
    )


class EnrollmentSchema(Representation):
    """One enrollment of one student in one course, in its status."""

    student_id = fields.Integer(dump_only=True)
    course_id = fields.Integer(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": list(Status)})
    enrolled_at = fields.AwareDateTime(
        dump_only=True, allow_none=True, metadata={"description": "Latest time it became enrolled"}
    )
    waitlisted_at = fields.AwareDateTime(
        dump_only=True, allow_none=True, metadata={"description": "Latest time it was waitlisted"}
    )
    dropped_at = fields.AwareDateTime(
        dump_only=True, allow_none=True, metadata={"description": "Latest time it was dropped"}
    )
    position = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Place on the waitlist when waitlisted (1 is next), else null"},
    )


class HistoryEntrySchema(Representation):
    """One change of status of an enrollment."""

    at = fields.AwareDateTime(dump_only=True)
    student_id = fields.Integer(dump_only=True)
    course_id = fields.Integer(dump_only=True)
    from_status = fields.String(
        dump_only=True, allow_none=True, metadata={"description": "Null for the first entry"}
    )
    to_status = fields.String(dump_only=True)
    actor = fields.String(
        dump_only=True,
        metadata={"description": "Who made the change; system for automatic promotions"},
    )
    reason = fields.String(
        dump_only=True,
        metadata={
            "description": "requested, promoted, capacity_raised, override, migrated, "
            "student_deleted or course_deleted"
        },
    )


# --- one dumper per representation -------------------------------------------
# The views' response decorators document and dump with these instances, so
# each representation has one dump (``STUDENT.dump`` ...) that a faster
# serializer can take the place of without touching a view. The read queries
# select the columns these schemas name (see app.queries.columns_of).

STUDENT = StudentSchema()
STUDENTS = StudentSchema(many=True)
COURSE_SUMMARY = EnrolledCourseSummarySchema()
COURSE = CourseSchema()
COURSES = CourseSchema(many=True)
STUDENT_COURSES = StudentCourseSchema(many=True)
ROSTER = RosterEntrySchema(many=True)
WAITLISTED_SUMMARY = WaitlistedCourseSummarySchema()
WAITLIST = WaitlistEntrySchema(many=True)
ENROLLMENT = EnrollmentSchema()
ENROLLMENTS = EnrollmentSchema(many=True)
HISTORY = HistoryEntrySchema(many=True)
