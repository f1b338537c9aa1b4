"""Marshmallow schemas: input schemas validate, output schemas document and dump.

Input schemas reject unknown fields (marshmallow's default) and mirror every
column limit, so nothing PostgreSQL would refuse reaches the database.
"""

import marshmallow as ma
from marshmallow import fields, validate

from app.models import (
    CODE_MAX,
    DESCRIPTION_MAX,
    EMAIL_MAX,
    INT32_MAX,
    NAME_MAX,
    TITLE_MAX,
)

MAX_COURSE_IDS = 100
QUERY_MAX = 254
NO_NUL_PATTERN = r"^[^\x00]*$"
NOT_BLANK_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"


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


class Id(fields.Integer):
    """A positive 32-bit integer id; floats, booleans and strings are refused."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, validate=validate.Range(min=1, max=INT32_MAX), **kwargs)


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
        return super()._deserialize(value, attr, data, **kwargs).upper()


# --- students -----------------------------------------------------------------


class StudentCreateSchema(ma.Schema):
    """Body of ``POST /students``."""

    name = CleanString(required=True, max_length=NAME_MAX)
    email = Email(required=True)


class StudentUpdateSchema(ma.Schema):
    """Body of ``PATCH /students/{id}``: any subset of the fields."""

    name = CleanString(max_length=NAME_MAX)
    email = Email()


class StudentQuerySchema(ma.Schema):
    """Filters of ``GET /students``."""

    class Meta:
        unknown = ma.EXCLUDE

    q = CleanString(
        max_length=QUERY_MAX,
        metadata={"description": "Case-insensitive match on name or email"},
    )


class EnrolledCourseSummarySchema(ma.Schema):
    """A course as nested in a student."""

    id = fields.Integer(dump_only=True)
    code = fields.String(dump_only=True)
    title = fields.String(dump_only=True)
    enrolled_at = fields.AwareDateTime(dump_only=True)


class StudentSchema(ma.Schema):
    """The full student representation."""

    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    courses = fields.List(
        fields.Nested(EnrolledCourseSummarySchema),
        dump_only=True,
        metadata={"description": "The student's courses, ordered by code"},
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


class CourseUpdateSchema(CourseCreateSchema):
    """Body of ``PATCH /courses/{id}``: any subset of the fields."""

    code = CourseCode()
    title = CleanString(max_length=TITLE_MAX)


class CourseQuerySchema(ma.Schema):
    """Filters of ``GET /courses``."""

    class Meta:
        unknown = ma.EXCLUDE

    q = CleanString(
        max_length=QUERY_MAX,
        metadata={"description": "Case-insensitive match on code or title"},
    )


class CourseSchema(ma.Schema):
    """The full course representation."""

    id = fields.Integer(dump_only=True)
    code = fields.String(dump_only=True)
    title = fields.String(dump_only=True)
    description = fields.String(dump_only=True, allow_none=True)
    capacity = fields.Integer(dump_only=True, allow_none=True)
    enrolled_count = fields.Integer(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)


class StudentCourseSchema(CourseSchema):
    """A course of one student: the course representation plus ``enrolled_at``."""

    enrolled_at = fields.AwareDateTime(dump_only=True)


class RosterEntrySchema(ma.Schema):
    """A student enrolled in a course."""

    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    enrolled_at = fields.AwareDateTime(dump_only=True)


# --- enrollment ---------------------------------------------------------------


class EnrollmentRequestSchema(ma.Schema):
    """Body of ``POST /students/{id}/courses``."""

    course_ids = fields.List(
        Id(),
        required=True,
        validate=validate.Length(min=1, max=MAX_COURSE_IDS),
        metadata={"description": "1 to 100 course ids; repeats count once"},
    )


class CourseIdSchema(ma.Schema):
    """Body of ``POST /students/{id}/enroll``."""

    course_id = Id(required=True)


class EnrollPairSchema(CourseIdSchema):
    """Body of ``POST /enroll``."""

    student_id = Id(required=True)


class EnrollmentSchema(ma.Schema):
    """One enrollment, as the compatibility endpoints answer it."""

    student_id = fields.Integer(dump_only=True)
    course_id = fields.Integer(dump_only=True)
    enrolled_at = fields.AwareDateTime(dump_only=True)


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
ENROLLMENT = EnrollmentSchema()
