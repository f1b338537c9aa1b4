"""Students blueprint: the students, and their enrollments in courses."""

from flask import url_for
from flask.views import MethodView

from app import queries
from app.auth.caller import current_caller
from app.auth.policy import (
    BODY_OWNER_OR_STAFF,
    OWNER_OR_STAFF,
    STAFF,
    access,
    require_access_to_student,
)
from app.bodies import Blueprint
from app.etags import conditional, if_match
from app.idempotency import idempotent
from app.pages import PAGE_HEADERS
from app.routing import error_responses, refuse_unknown_query
from app.schemas import (
    ENROLLMENT,
    ENROLLMENTS,
    HISTORY,
    STUDENT,
    STUDENT_COURSES,
    STUDENTS,
    CourseIdSchema,
    DropQuerySchema,
    EnrollmentQuerySchema,
    EnrollmentRequestSchema,
    EnrollPairSchema,
    StudentCreateSchema,
    StudentQuerySchema,
    StudentUpdateSchema,
)
from app.services import enrollment, students

blp = Blueprint("students", __name__, description="Students and their course enrollments")
blp.before_request(refuse_unknown_query)

BODY_ERRORS = (400, 413, 415, 422)
LOCATION = {"Location": {"description": "URL of the new student", "schema": {"type": "string"}}}


@blp.route("/students")
class Students(MethodView):
    """The student collection."""

    @access(STAFF)
    @blp.arguments(StudentQuerySchema, location="query")
    @blp.response(200, STUDENTS, headers=PAGE_HEADERS)
    @error_responses(blp, 422)
    def get(self, args):
        """List students, ordered by id unless sorted"""
        page = queries.list_students(args.get("q"), args["paging"])
        return page.items, page.headers()

    @access(STAFF)
    @blp.arguments(StudentCreateSchema)
    @idempotent
    @blp.response(201, STUDENT, headers=LOCATION)
    @error_responses(blp, *BODY_ERRORS, 409)
    def post(self, data):
        """Create a student"""
        student_id = students.create_student(data)
        location = url_for("students.StudentById", student_id=student_id)
        return queries.student_detail(student_id), {"Location": location}


@blp.route("/students/<id:student_id>")
class StudentById(MethodView):
    """One student."""

    @access(OWNER_OR_STAFF)
    @conditional
    @blp.response(200, STUDENT)
    @error_responses(blp, 404)
    def get(self, student_id):
        """Get a student with their courses"""
        return queries.student_detail(student_id)

    @access(STAFF)
    @blp.arguments(StudentUpdateSchema)
    @conditional
    @blp.response(200, STUDENT)
    @error_responses(blp, *BODY_ERRORS, 404, 409)
    def patch(self, data, student_id):
        """Update a student's name, email or external_id"""
        students.update_student(student_id, data, precondition=if_match)
        return queries.student_detail(student_id)

    @access(STAFF)
    @conditional
    @blp.response(204)
    @error_responses(blp, 404)
    def delete(self, student_id):
        """Delete a student and their enrollments (their seats go to the waitlists)"""
        students.delete_student(student_id, actor=current_caller(), precondition=if_match)


@blp.route("/students/<id:student_id>/courses")
class StudentCourses(MethodView):
    """The courses one student is enrolled in."""

    @access(OWNER_OR_STAFF)
    @blp.response(200, STUDENT_COURSES)
    @error_responses(blp, 404)
    def get(self, student_id):
        """List the courses a student is enrolled in, ordered by code"""
        return queries.student_courses(student_id)

    @access(OWNER_OR_STAFF)
    @blp.arguments(EnrollmentRequestSchema)
    @idempotent
    @blp.response(201, STUDENT, description="At least one enrollment changed status")
    @blp.alt_response(200, schema=STUDENT, description="Nothing changed", success=True)
    @error_responses(blp, *BODY_ERRORS, 403, 404, 409)
    def post(self, data, student_id):
        """Enroll a student in courses, or waitlist them (all or nothing, idempotent)"""
        result = enrollment.enroll(
            student_id, data.pop("course_ids"), actor=current_caller(), **data
        )
        return queries.student_detail(student_id), 201 if result.changed else 200


@blp.route("/students/<id:student_id>/courses/<id:course_id>")
class StudentCourse(MethodView):
    """One enrollment of one student."""

    @access(OWNER_OR_STAFF)
    @blp.arguments(DropQuerySchema, location="query")
    @blp.response(204)
    @error_responses(blp, 403, 404, 409)
    def delete(self, args, student_id, course_id):
        """Drop a course or leave its waitlist (kept as dropped; the seat goes to the waitlist)"""
        enrollment.drop(student_id, course_id, actor=current_caller(), **args)


@blp.route("/students/<id:student_id>/courses/<id:course_id>/history")
class StudentCourseHistory(MethodView):
    """The history of one enrollment."""

    @access(OWNER_OR_STAFF)
    @blp.response(200, HISTORY)
    @error_responses(blp, 404)
    def get(self, student_id, course_id):
        """List the status changes of one enrollment, oldest first"""
        return queries.enrollment_history(student_id, course_id)


@blp.route("/students/<id:student_id>/enrollments")
class StudentEnrollments(MethodView):
    """Every enrollment of one student, in any status."""

    @access(OWNER_OR_STAFF)
    @blp.arguments(EnrollmentQuerySchema, location="query")
    @blp.response(200, ENROLLMENTS)
    @error_responses(blp, 404, 422)
    def get(self, args, student_id):
        """List a student's enrollments in any status, with their times, by course id"""
        return queries.student_enrollments(student_id, args.get("status"))


@blp.route("/students/<id:student_id>/enroll")
class StudentEnroll(MethodView):
    """Compatibility form of enrollment for one course."""

    @access(OWNER_OR_STAFF)
    @blp.arguments(CourseIdSchema)
    @idempotent
    @blp.response(201, ENROLLMENT, description="The enrollment changed status")
    @blp.alt_response(200, schema=ENROLLMENT, description="Nothing changed", success=True)
    @error_responses(blp, *BODY_ERRORS, 403, 404, 409)
    def post(self, data, student_id):
        """Enroll a student in one course, or waitlist them"""
        made, changed = enrollment.enroll_one(
            student_id, data.pop("course_id"), actor=current_caller(), **data
        )
        return made, 201 if changed else 200


@blp.route("/enroll")
class Enroll(MethodView):
    """Compatibility form of enrollment naming both ids in the body."""

    @access(BODY_OWNER_OR_STAFF)
    @blp.arguments(EnrollPairSchema)
    @idempotent
    @blp.response(201, ENROLLMENT, description="The enrollment changed status")
    @blp.alt_response(200, schema=ENROLLMENT, description="Nothing changed", success=True)
    @error_responses(blp, *BODY_ERRORS, 403, 409)
    def post(self, data):
        """Enroll a student in one course, or waitlist them"""
        require_access_to_student(data["student_id"])
        made, changed = enrollment.enroll_one(
            data.pop("student_id"), data.pop("course_id"), actor=current_caller(), **data
        )
        return made, 201 if changed else 200
