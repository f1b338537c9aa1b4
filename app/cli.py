"""Command-line commands: ``flask seed-demo``."""

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.extensions import db
from app.models import Course, Student
from app.services import enrollment
from app.services.actors import SYSTEM_ACTOR

DEMO_COURSES = [
    ("CS101", "Introduction to Programming", 30),
    ("CS201", "Data Structures", 25),
    ("MATH101", "Calculus I", None),
    ("HIST110", "World History", 5),
]
DEMO_STUDENTS = [
    ("Ada Lovelace", "ada@example.edu", ["CS101", "MATH101"]),
    ("Alan Turing", "alan@example.edu", ["CS101", "CS201"]),
    ("Grace Hopper", "grace@example.edu", ["CS201", "HIST110"]),
    ("Katherine Johnson", "katherine@example.edu", ["MATH101"]),
]


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Fill a small demo data set; running it again adds nothing."""
    courses = {course.code: course for course in db.session.scalars(select(Course))}
    for code, title, capacity in DEMO_COURSES:
        if code not in courses:
            courses[code] = Course(code=code, title=title, capacity=capacity)
            db.session.add(courses[code])
    students = {student.email: student for student in db.session.scalars(select(Student))}
    new = []
    for name, email, codes in DEMO_STUDENTS:
        if email not in students:
            students[email] = Student(name=name, email=email)
            db.session.add(students[email])
            new.append((students[email], codes))
    db.session.commit()
    # Through the enrollment rules, so each enrollment has its history like any other.
    for student, codes in new:
        course_ids = [courses[code].id for code in codes]
        enrollment.enroll(student.id, course_ids, actor=SYSTEM_ACTOR)
    click.echo(f"Demo data ready: {len(DEMO_STUDENTS)} students, {len(DEMO_COURSES)} courses.")
