"""OpenAPI links: how the answer of one operation feeds the next one.

A client (or a stateful fuzzer) reads here that the id in the body of
``POST /students`` is the ``student_id`` of ``GET /students/{student_id}``,
that an enrollment names the pair to unenroll, and so on. Each link names its
target by ``operationId`` (``app/operations.py``): a JSON pointer into the
paths would carry the path's raw ``{}``, which is no valid URI reference. The
whole table is below; ``LinksPlugin`` copies it onto the success responses of
the spec, and ``tests/test_links.py`` checks that every key names a documented
response and every link a documented operation.
"""

from apispec import BasePlugin

ID = "$response.body#/id"
PATH_STUDENT = "$request.path.student_id"
PATH_COURSE = "$request.path.course_id"
FIRST_COURSE = "$response.body#/courses/0/id"


def link(operation_id: str, description: str, body: dict | None = None, **parameters) -> dict:
    """A link to the operation ``operation_id``, filling ``parameters`` (and the body)."""
    definition = {
        "operationId": operation_id,
        "description": description,
        "parameters": parameters,
    }
    if body is not None:
        definition["requestBody"] = body
    return definition


def student_links(student_id: str) -> dict:
    """Everything that can be done with a student whose id is ``student_id``."""
    return {
        "GetStudent": link("getStudent", "Read the student", student_id=student_id),
        "UpdateStudent": link("updateStudent", "Rename the student", student_id=student_id),
        "DeleteStudent": link("deleteStudent", "Delete the student", student_id=student_id),
        "ListStudentCourses": link(
            "listStudentCourses",
            "List the student's courses",
            student_id=student_id,
        ),
        "EnrollStudent": link(
            "enrollStudentInCourses",
            "Enroll the student in courses",
            student_id=student_id,
        ),
    }


def course_links(course_id: str) -> dict:
    """Everything that can be done with a course whose id is ``course_id``."""
    return {
        "GetCourse": link("getCourse", "Read the course", course_id=course_id),
        "UpdateCourse": link("updateCourse", "Change the course", course_id=course_id),
        "DeleteCourse": link("deleteCourse", "Delete the course", course_id=course_id),
        "ListCourseStudents": link(
            "listCourseStudents",
            "List the students in the course",
            course_id=course_id,
        ),
        "EnrollInCourse": link(
            "createEnrollment", "Enroll a student in the course", body={"course_id": course_id}
        ),
        "ListCourseWaitlist": link(
            "listCourseWaitlist",
            "List the students waiting for the course",
            course_id=course_id,
        ),
    }


def enrollment_links(student_id: str, course_id: str) -> dict:
    """Read back, and undo, the enrollment of ``student_id`` in ``course_id``."""
    return {
        "Unenroll": link(
            "dropStudentFromCourse",
            "Unenroll the student from the course",
            student_id=student_id,
            course_id=course_id,
        ),
        "GetEnrolledStudent": link("getStudent", "Read the student back", student_id=student_id),
        "ListEnrolledCourses": link(
            "listStudentCourses",
            "List the student's courses",
            student_id=student_id,
        ),
        "ListRoster": link(
            "listCourseStudents",
            "List the students in the course",
            course_id=course_id,
        ),
        "GetEnrollmentHistory": link(
            "listEnrollmentHistory",
            "Read the history of the enrollment",
            student_id=student_id,
            course_id=course_id,
        ),
        "ListStudentEnrollments": link(
            "listStudentEnrollments",
            "List the student's enrollments in any status",
            student_id=student_id,
        ),
    }


# (path, method, status) of a success response -> the links it carries.
LINKS: dict[tuple[str, str, str], dict] = {
    ("/students", "post", "201"): student_links(ID),
    ("/students/{student_id}", "patch", "200"): student_links(PATH_STUDENT),
    ("/courses", "post", "201"): course_links(ID),
    ("/courses/{course_id}", "patch", "200"): course_links(PATH_COURSE),
    **{
        ("/students/{student_id}/courses", "post", status): enrollment_links(
            PATH_STUDENT, FIRST_COURSE
        )
        for status in ("200", "201")
    },
    **{
        (path, "post", status): enrollment_links(
            "$response.body#/student_id", "$response.body#/course_id"
        )
        for path in ("/students/{student_id}/enroll", "/enroll")
        for status in ("200", "201")
    },
    ("/courses/{course_id}/waitlist", "get", "200"): {
        "LeaveWaitlistFirst": link(
            "dropStudentFromCourse",
            "Take the first student listed off the waitlist",
            student_id="$response.body#/0/id",
            course_id=PATH_COURSE,
        ),
    },
    ("/courses/{course_id}/students", "get", "200"): {
        "UnenrollFirst": link(
            "dropStudentFromCourse",
            "Unenroll the first student listed",
            student_id="$response.body#/0/id",
            course_id=PATH_COURSE,
        ),
    },
}


class LinksPlugin(BasePlugin):
    """Put the links of ``LINKS`` on the responses they belong to."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        """Add each operation's links to its documented success responses."""
        for method, operation in (operations or {}).items():
            for status, response in operation.get("responses", {}).items():
                links = LINKS.get((path, method, str(status)))
                if links and isinstance(response, dict):
                    response.setdefault("links", {}).update(links)
