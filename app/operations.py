"""Operation ids and descriptions: the names generated clients give the API's calls.

Clients generated from ``openapi.json`` name their functions after each
operation's ``operationId`` (``listStudents``, ``enrollStudentInCourses`` ...),
so the ids are part of the contract: renaming one breaks the frontends' code.
The whole table is below; ``OperationsPlugin`` copies it onto the spec, the
links of ``app/links.py`` point at these ids, and ``tests/test_contract.py``
checks that every documented operation has an entry, unique and camelCase.
The view's docstring stays the operation's one-line summary.
"""

from typing import NamedTuple

from apispec import BasePlugin


class Operation(NamedTuple):
    """What the spec says about one operation besides its parameters and responses."""

    operation_id: str
    description: str


# (path, method) -> the operation's id and description.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/students", "get"): Operation(
        "listStudents",
        "A page of students ordered by id, each with their courses and waitlist places; "
        "`q` keeps those whose name or email contains it. The page is described in "
        "`X-Pagination`.",
    ),
    ("/students", "post"): Operation(
        "createStudent",
        "Create a student; `Location` names the new student. The email (compared "
        "case-insensitively) and the external id must be free.",
    ),
    ("/students/{student_id}", "get"): Operation(
        "getStudent",
        "The student with the courses they are enrolled in and the waitlists they are on.",
    ),
    ("/students/{student_id}", "patch"): Operation(
        "updateStudent",
        "Change any of the student's name, email and external id; the fields left out stay.",
    ),
    ("/students/{student_id}", "delete"): Operation(
        "deleteStudent",
        "Delete the student and their enrollments; each seat they held goes to the next "
        "student on that course's waitlist. The enrollment history stays.",
    ),
    ("/students/{student_id}/courses", "get"): Operation(
        "listStudentCourses",
        "The courses the student is enrolled in (not waiting, not dropped), ordered by code, "
        "each with the time the student was enrolled.",
    ),
    ("/students/{student_id}/courses", "post"): Operation(
        "enrollStudentInCourses",
        "Enroll the student in every listed course, or in none: one full, closed or unknown "
        "course refuses the whole request. With `waitlist`, full courses put the student on "
        "their waitlist instead. Answers the student: 201 when a status changed, 200 when the "
        "student was already enrolled everywhere.",
    ),
    ("/students/{student_id}/courses/{course_id}", "delete"): Operation(
        "dropStudentFromCourse",
        "Drop the course, or leave its waitlist. The enrollment is kept with the status "
        "`dropped`, and a freed seat goes to the next student on the waitlist.",
    ),
    ("/students/{student_id}/courses/{course_id}/history", "get"): Operation(
        "listEnrollmentHistory",
        "Every change of status of the student's enrollment in the course, oldest first, "
        "with who made it and why.",
    ),
    ("/students/{student_id}/enrollments", "get"): Operation(
        "listStudentEnrollments",
        "Every enrollment of the student in any status (enrolled, waitlisted, dropped), "
        "ordered by course id; `status` keeps one status.",
    ),
    ("/students/{student_id}/enroll", "post"): Operation(
        "enrollStudentInCourse",
        "Enroll the student in one course, or waitlist them (compatibility form of "
        "`enrollStudentInCourses`). Answers the enrollment: 201 when its status changed, 200 "
        "when nothing did.",
    ),
    ("/enroll", "post"): Operation(
        "createEnrollment",
        "Enroll the student named in the body in the course named in the body, or waitlist "
        "them (compatibility form). Answers the enrollment: 201 when its status changed, 200 "
        "when nothing did.",
    ),
    ("/courses", "get"): Operation(
        "listCourses",
        "A page of courses ordered by code, with their counts; `q` keeps those whose code or "
        "title contains it. The page is described in `X-Pagination`.",
    ),
    ("/courses", "post"): Operation(
        "createCourse",
        "Create a course; `Location` names the new course. The code (stored upper-cased) must "
        "be free, and the enrollment window must close after it opens.",
    ),
    ("/courses/{course_id}", "get"): Operation(
        "getCourse",
        "The course with its enrolled and waitlisted counts and the seats left.",
    ),
    ("/courses/{course_id}", "patch"): Operation(
        "updateCourse",
        "Change any of the course's fields; the fields left out stay. A larger capacity "
        "promotes waitlisted students into the new seats; a capacity below the enrolled count "
        "is refused.",
    ),
    ("/courses/{course_id}", "delete"): Operation(
        "deleteCourse",
        "Delete the course and its enrollments; the students and the enrollment history stay.",
    ),
    ("/courses/{course_id}/students", "get"): Operation(
        "listCourseStudents",
        "A page of the students enrolled in the course (its roster), ordered by name then id.",
    ),
    ("/courses/{course_id}/waitlist", "get"): Operation(
        "listCourseWaitlist",
        "A page of the students waiting for the course, in the order they will be promoted.",
    ),
}


class OperationsPlugin(BasePlugin):
    """Give each operation of ``OPERATIONS`` its ``operationId`` and description."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        """Set the id and description of every operation the table names."""
        for method, operation in (operations or {}).items():
            entry = OPERATIONS.get((path, method))
            if entry:
                operation["operationId"] = entry.operation_id
                operation["description"] = entry.description
