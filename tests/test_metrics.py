"""Metrics: ``GET /metrics`` in Prometheus text format, per route template and status."""

from tests.support.servers import scrape


def metrics(client) -> dict[tuple, float]:
    """Every sample of ``/metrics`` (fails unless it answers 200 in Prometheus' text format)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return scrape(response.get_data(as_text=True))


def requests_counted(samples, method: str, route: str, status: str) -> float:
    key = (
        "flask_http_request_duration_seconds_count",
        (("method", method), ("route", route), ("status", status)),
    )
    return samples.get(key, 0.0)


def test_requests_are_counted_per_route_template_and_status(client, make_student):
    before = metrics(client)
    first, second = make_student(), make_student()

    client.get(f"/students/{first}")
    client.get(f"/students/{second}")
    client.get("/students/999999")
    after = metrics(client)

    route = "/students/<id:student_id>"
    assert (
        requests_counted(after, "GET", route, "200") - requests_counted(before, "GET", route, "200")
        == 2
    )
    assert (
        requests_counted(after, "GET", route, "404") - requests_counted(before, "GET", route, "404")
        == 1
    )
    assert not any(f"/students/{first}" in str(labels) for _name, labels in after)


def test_latency_is_a_histogram_with_buckets(client):
    client.get("/livez")
    samples = metrics(client)

    labels = (("le", "+Inf"), ("method", "GET"), ("route", "/livez"), ("status", "200"))
    assert samples[("flask_http_request_duration_seconds_bucket", labels)] >= 1


def test_unmatched_urls_share_one_label(client):
    before = metrics(client)
    client.get("/no/such/page/1")
    client.get("/no/such/page/2")

    after = metrics(client)

    assert (
        requests_counted(after, "GET", "<unmatched>", "404")
        - requests_counted(before, "GET", "<unmatched>", "404")
        == 2
    )


def test_enrollment_counters_follow_the_service_layer(
    client, make_student, make_course, enroll_rows
):
    taken, student = make_student(), make_student()
    full, first, second = make_course(capacity=1), make_course(), make_course()
    enroll_rows(taken, full)
    before = metrics(client)

    client.post(f"/students/{student}/courses", json={"course_ids": [first, second]})
    client.post(f"/students/{student}/courses", json={"course_ids": [first]})  # unchanged
    client.post(f"/students/{student}/courses", json={"course_ids": [full]})  # refused
    client.delete(f"/students/{student}/courses/{first}")
    client.delete(f"/courses/{full}")
    after = metrics(client)

    def delta(name):
        return after[(name, ())] - before[(name, ())]

    assert delta("enrollments_created_total") == 2
    assert delta("enrollments_refused_capacity_total") == 1
    assert delta("enrollments_removed_total") == 2


def test_metrics_and_health_stay_out_of_the_openapi_spec(client):
    paths = client.get("/openapi.json").get_json()["paths"]

    assert not {"/metrics", "/livez", "/readyz"} & set(paths)


def test_waitlisting_and_promotions_are_counted_by_reason(client, make_student, make_course):
    course = make_course(capacity=1, waitlist_capacity=None)
    seated, *waiting = (make_student() for _ in range(4))
    before = metrics(client)

    client.post(f"/students/{seated}/courses", json={"course_ids": [course]})
    for student in waiting:
        client.post(f"/students/{student}/courses", json={"course_ids": [course], "waitlist": True})
    client.delete(f"/students/{seated}/courses/{course}")  # promotes one
    client.patch(f"/courses/{course}", json={"capacity": 3})  # promotes the other two
    after = metrics(client)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("enrollments_waitlisted_total") == 3
    assert delta("enrollments_promoted_total", reason="promoted") == 1
    assert delta("enrollments_promoted_total", reason="capacity_raised") == 2
    assert delta("enrollments_created_total") == 1
