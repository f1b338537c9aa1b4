"""Races through real threads and real commits: capacity and uniqueness hold."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

THREADS = 30


def race(app, requests):
    """Send each (path, body) POST from its own thread, all released together."""
    barrier = threading.Barrier(len(requests))

    def send(request):
        path, body = request
        client = app.test_client()
        barrier.wait(timeout=30)
        response = client.post(path, json=body)
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests))


@pytest.mark.slow
def test_thirty_students_racing_for_five_seats(
    app, client, make_student, make_course, enrollment_pairs
):
    course = make_course(capacity=5)
    students = [make_student() for _ in range(THREADS)]

    results = race(app, [(f"/students/{s}/courses", {"course_ids": [course]}) for s in students])

    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 5
    assert statuses.count(409) == THREADS - 5
    assert all(status < 500 for status in statuses)
    assert len(enrollment_pairs()) == 5
    assert client.get(f"/courses/{course}").get_json()["enrolled_count"] == 5


@pytest.mark.slow
def test_same_pair_twenty_times_at_once_is_stored_once(
    app, make_student, make_course, enrollment_pairs
):
    student = make_student()
    course = make_course(capacity=3)

    results = race(app, [("/enroll", {"student_id": student, "course_id": course})] * 20)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 19 + [201]
    assert enrollment_pairs() == {(student, course)}


@pytest.mark.slow
def test_lowering_capacity_while_students_enroll_never_oversells(
    app, client, make_student, make_course, enrollment_pairs
):
    course = make_course(capacity=20)
    students = [make_student() for _ in range(20)]
    requests = [(f"/students/{s}/courses", {"course_ids": [course]}) for s in students]

    barrier = threading.Barrier(len(requests) + 1)
    results = []

    def lower_capacity():
        barrier.wait(timeout=30)
        results.append(
            app.test_client().patch(f"/courses/{course}", json={"capacity": 10}).status_code
        )

    lowering = threading.Thread(target=lower_capacity)
    lowering.start()

    def send(request):
        path, body = request
        local = app.test_client()
        barrier.wait(timeout=30)
        return local.post(path, json=body).status_code

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        statuses = list(pool.map(send, requests))
    lowering.join()

    course_body = client.get(f"/courses/{course}").get_json()
    assert all(status in (201, 409) for status in statuses)
    assert course_body["enrolled_count"] == len(enrollment_pairs())
    assert course_body["enrolled_count"] <= course_body["capacity"]
