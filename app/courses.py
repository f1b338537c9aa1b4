"""Courses blueprint: the courses, and who is enrolled in them."""

from flask import url_for
from flask.views import MethodView

from app import queries
from app.auth.caller import current_caller
from app.auth.policy import ADMIN_ONLY, PUBLIC, STAFF, access
from app.bodies import Blueprint
from app.etags import conditional, if_match
from app.idempotency import idempotent
from app.pages import PAGE_HEADERS
from app.routing import error_responses, refuse_unknown_query
from app.schemas import (
    COURSE,
    COURSES,
    ROSTER,
    WAITLIST,
    CourseCreateSchema,
    CourseQuerySchema,
    CourseUpdateSchema,
    RosterQuerySchema,
    WaitlistQuerySchema,
)
from app.services import courses

blp = Blueprint("courses", __name__, description="Courses and their rosters")
blp.before_request(refuse_unknown_query)

BODY_ERRORS = (400, 413, 415, 422)
LOCATION = {"Location": {"description": "URL of the new course", "schema": {"type": "string"}}}


@blp.route("/courses")
class Courses(MethodView):
    """The course collection."""

    @access(PUBLIC)
    @blp.arguments(CourseQuerySchema, location="query")
    @blp.response(200, COURSES, headers=PAGE_HEADERS)
    @error_responses(blp, 422)
    def get(self, args):
        """List courses, ordered by code unless sorted"""
        page = queries.list_courses(args.get("q"), args["paging"])
        return page.items, page.headers()

    @access(ADMIN_ONLY)
    @blp.arguments(CourseCreateSchema)
    @idempotent
    @blp.response(201, COURSE, headers=LOCATION)
    @error_responses(blp, *BODY_ERRORS, 409)
    def post(self, data):
        """Create a course"""
        course_id = courses.create_course(data)
        location = url_for("courses.CourseById", course_id=course_id)
        return queries.get_course(course_id), {"Location": location}


@blp.route("/courses/<id:course_id>")
class CourseById(MethodView):
    """One course."""

    @access(PUBLIC)
    @conditional
    @blp.response(200, COURSE)
    @error_responses(blp, 404)
    def get(self, course_id):
        """Get a course with its enrolled count"""
        return queries.get_course(course_id)

    @access(ADMIN_ONLY)
    @blp.arguments(CourseUpdateSchema)
    @conditional
    @blp.response(200, COURSE)
    @error_responses(blp, *BODY_ERRORS, 404, 409)
    def patch(self, data, course_id):
        """Update a course (a larger capacity promotes waitlisted students)"""
        courses.update_course(course_id, data, precondition=if_match)
        return queries.get_course(course_id)

    @access(ADMIN_ONLY)
    @conditional
    @blp.response(204)
    @error_responses(blp, 404)
    def delete(self, course_id):
        """Delete a course and its enrollments (their history stays)"""
        courses.delete_course(course_id, actor=current_caller(), precondition=if_match)


@blp.route("/courses/<id:course_id>/students")
class CourseStudents(MethodView):
    """The students enrolled in one course."""

    @access(STAFF)
    @blp.arguments(RosterQuerySchema, location="query")
    @blp.response(200, ROSTER, headers=PAGE_HEADERS)
    @error_responses(blp, 404, 422)
    def get(self, args, course_id):
        """List the students in a course, ordered by name unless sorted"""
        page = queries.course_roster(course_id, args["paging"])
        return page.items, page.headers()


@blp.route("/courses/<id:course_id>/waitlist")
class CourseWaitlist(MethodView):
    """The students waiting for one course."""

    @access(STAFF)
    @blp.arguments(WaitlistQuerySchema, location="query")
    @blp.response(200, WAITLIST, headers=PAGE_HEADERS)
    @error_responses(blp, 404, 422)
    def get(self, args, course_id):
        """List the students waiting for a course, in promotion order"""
        page = queries.course_waitlist(course_id, args["paging"])
        return page.items, page.headers()
