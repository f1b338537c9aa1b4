"""Prometheus metrics: ``GET /metrics`` with HTTP and enrollment figures.

Under gunicorn every worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py sets it up) and ``/metrics``
adds up all workers' files, whichever worker answers the scrape.
"""

from flask import Flask, Request
from prometheus_client import CollectorRegistry, Counter
from prometheus_flask_exporter import PrometheusMetrics

# Not registered here: each app registers them in its own registry, so a
# process that builds several apps (the test suite) never registers twice.
ENROLLMENTS_CREATED = Counter(
    "enrollments_created", "Enrollments created (one per student and course)", registry=None
)
ENROLLMENTS_REFUSED_CAPACITY = Counter(
    "enrollments_refused_capacity",
    "Enrollment requests refused because a course had no free seat",
    registry=None,
)
ENROLLMENTS_REMOVED = Counter(
    "enrollments_removed",
    "Enrollments ended by dropping (waitlist places included) or by deleting a student or a course",
    registry=None,
)
RATE_LIMITS_FAILED_OPEN = Counter(
    "rate_limits_failed_open",
    "Requests served without rate limits because the limit storage (Redis) was unreachable",
    registry=None,
)
ENROLLMENTS_WAITLISTED = Counter(
    "enrollments_waitlisted",
    "Students placed on a course's waitlist (one per student and course)",
    registry=None,
)
ENROLLMENTS_PROMOTED = Counter(
    "enrollments_promoted",
    "Waitlisted students promoted to enrolled, by reason (promoted: a seat was freed; "
    "capacity_raised: the course got more seats)",
    ["reason"],
    registry=None,
)
COUNTERS = (
    ENROLLMENTS_CREATED,
    ENROLLMENTS_REFUSED_CAPACITY,
    ENROLLMENTS_REMOVED,
    ENROLLMENTS_WAITLISTED,
    ENROLLMENTS_PROMOTED,
    RATE_LIMITS_FAILED_OPEN,
)


def route(request: Request) -> str:
    """The route template a request matched (never the ids in it), for metric labels."""
    return request.url_rule.rule if request.url_rule else "<unmatched>"


def register_metrics(app: Flask) -> PrometheusMetrics:
    """Serve ``/metrics``: request counts and latency per route template and status."""
    registry = CollectorRegistry()
    for counter in COUNTERS:
        registry.register(counter)
    return PrometheusMetrics(app, group_by=route, registry=registry)
