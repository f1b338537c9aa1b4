"""The ``flask seed-demo`` command."""

from app.cli import DEMO_COURSES, DEMO_STUDENTS
from app.models import Course, Enrollment, EnrollmentHistory, Student


def test_seed_demo_fills_demo_data_and_is_idempotent(app, db_rows):
    runner = app.test_cli_runner()

    first = runner.invoke(args=["seed-demo"])
    second = runner.invoke(args=["seed-demo"])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert len(db_rows(Student)) == len(DEMO_STUDENTS)
    assert len(db_rows(Course)) == len(DEMO_COURSES)
    assert len(db_rows(Enrollment)) == sum(len(codes) for _, _, codes in DEMO_STUDENTS)
    # Enrolled through the enrollment rules: each enrollment has its history row.
    history = db_rows(EnrollmentHistory)
    assert sorted((h.student_id, h.course_id) for h in history) == sorted(
        (e.student_id, e.course_id) for e in db_rows(Enrollment)
    )
    assert {(h.to_status, h.actor, h.reason) for h in history} == {
        ("enrolled", "system", "requested")
    }
