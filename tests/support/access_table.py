"""The access table of README "Authentication and roles", as data the tests walk cell by cell.

``TABLE`` maps each operation to its cells for (anonymous, student, registrar,
admin): ``"yes"``, ``"own"`` (a student on their own record only) or the
refusal status. :func:`cells` expands it into one case per caller and target:
a student on their own record, on another student's, and a student token whose
subject is no student's ``external_id``.
"""

from dataclasses import dataclass

# operation: (anonymous, student, registrar, admin)
TABLE = {
    "GET /courses": ("yes", "yes", "yes", "yes"),
    "GET /courses/{course}": ("yes", "yes", "yes", "yes"),
    "GET /students": (401, 403, "yes", "yes"),
    "GET /courses/{course}/students": (401, 403, "yes", "yes"),
    "GET /courses/{course}/waitlist": (401, 403, "yes", "yes"),
    "GET /students/{student}": (401, "own", "yes", "yes"),
    "GET /students/{student}/courses": (401, "own", "yes", "yes"),
    "GET /students/{student}/enrollments": (401, "own", "yes", "yes"),
    "GET /students/{student}/courses/{course}/history": (401, "own", "yes", "yes"),
    "POST /students/{student}/courses": (401, "own", "yes", "yes"),
    "POST /students/{student}/enroll": (401, "own", "yes", "yes"),
    "POST /enroll": (401, "own", "yes", "yes"),
    "DELETE /students/{student}/courses/{course}": (401, "own", "yes", "yes"),
    "POST /students": (401, 403, "yes", "yes"),
    "PATCH /students/{student}": (401, 403, "yes", "yes"),
    "DELETE /students/{student}": (401, 403, "yes", "yes"),
    "POST /courses": (401, 403, 403, "yes"),
    "PATCH /courses/{course}": (401, 403, 403, "yes"),
    "DELETE /courses/{course}": (401, 403, 403, "yes"),
    "GET /livez": ("yes", "yes", "yes", "yes"),
    "GET /readyz": ("yes", "yes", "yes", "yes"),
    "GET /openapi.json": ("yes", "yes", "yes", "yes"),
    "GET /docs": ("yes", "yes", "yes", "yes"),
}
SUCCESS = {"GET": 200, "POST": 201, "PATCH": 200, "DELETE": 204}
# Bodies of the writes; {free} is a course the student is not enrolled in yet.
BODIES = {
    "POST /students/{student}/courses": {"course_ids": ["{free}"]},
    "POST /students/{student}/enroll": {"course_id": "{free}"},
    "POST /enroll": {"student_id": "{student}", "course_id": "{free}"},
    "POST /students": {"name": "New Student", "email": "new@example.edu"},
    "PATCH /students/{student}": {"name": "Renamed"},
    "POST /courses": {"code": "NEW1", "title": "New course"},
    "PATCH /courses/{course}": {"title": "Renamed"},
}
CALLERS = ("anonymous", "student", "registrar", "admin")


@dataclass(frozen=True)
class Cell:
    """One request of the table: who calls which operation on whose record, and the answer."""

    operation: str
    caller: (
        str  # anonymous, student, unlinked (a student token tied to no student), registrar, admin
    )
    target: str  # own or other: the student in the path or body
    expected: int

    @property
    def id(self) -> str:
        """A readable test id."""
        return f"{self.operation} as {self.caller} on {self.target}"

    @staticmethod
    def success(operation: str) -> int:
        """The status of an operation that succeeds."""
        return SUCCESS[operation.split()[0]]

    @property
    def method(self) -> str:
        """The HTTP method."""
        return self.operation.split()[0]

    def request(self, ids: dict) -> tuple[str, str, dict | None]:
        """(method, path, body) with the ids of this test's records filled in."""
        path = self.operation.split()[1].format(**ids)
        body = BODIES.get(self.operation)
        if body is not None:
            body = {key: _fill(value, ids) for key, value in body.items()}
        return self.method, path, body


def _fill(value, ids: dict):
    """Replace "{name}" placeholders (also inside lists) with integer ids."""
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    return value


def cells(operations=TABLE) -> list[Cell]:
    """Every cell of the table, the student column split into own, other and unlinked."""
    expanded = []
    for operation, row in operations.items():
        success = SUCCESS[operation.split()[0]]
        for caller, cell in zip(CALLERS, row, strict=True):
            if caller != "student":
                expanded.append(
                    Cell(operation, caller, "other", success if cell == "yes" else cell)
                )
                continue
            own = success if cell in ("yes", "own") else cell
            other = success if cell == "yes" else 403
            expanded.append(Cell(operation, "student", "own", own))
            if "{student}" in operation + str(BODIES.get(operation)):
                expanded.append(Cell(operation, "student", "other", other))
            expanded.append(Cell(operation, "unlinked", "own", success if cell == "yes" else 403))
    return expanded
