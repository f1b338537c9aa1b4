"""Prometheus metrics: ``GET /metrics`` with HTTP and enrollment figures.

Under gunicorn every worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py sets it up) and ``/metrics``
adds up all workers' files, whichever worker answers the scrape.

prometheus-flask-exporter serves ``/metrics`` (its multiprocess collection
included); the per-request samples, under the names and labels of its
defaults, are taken by :class:`RequestMetrics` in one hook that keeps each
label set's samples at hand, a third of what the exporter's own hooks cost
per request (docs/PERFORMANCE.md).
"""

import time

from flask import Flask, Request, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
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


# Label sets kept at hand: methods x route templates x statuses is small, but a client
# choosing odd methods could grow it, so past this many the samples are looked up each time.
MAX_KEPT_LABEL_SETS = 512


def route(request: Request) -> str:
    """The route template a request matched (never the ids in it), for metric labels."""
    return request.url_rule.rule if request.url_rule else "<unmatched>"


class RequestMetrics:
    """Latency per method, route template and status; requests per method and status.

    The names, labels and buckets are prometheus-flask-exporter's defaults
    (``flask_http_request_duration_seconds``, ``flask_http_request_total``,
    ``flask_http_request_exceptions_total``), so dashboards read the same series.
    """

    def __init__(self, registry: CollectorRegistry):
        self.duration = Histogram(
            "flask_http_request_duration_seconds",
            "Flask HTTP request duration in seconds",
            ("method", "route", "status"),
            registry=registry,
        )
        self.total = Counter(
            "flask_http_request_total",
            "Total number of HTTP requests",
            ("method", "status"),
            registry=registry,
        )
        self.exceptions = Counter(
            "flask_http_request_exceptions_total",
            "Total number of HTTP requests which resulted in an exception",
            ("method", "status"),
            registry=registry,
        )
        self._samples: dict[tuple[str, str, int], tuple] = {}

    def _samples_for(self, method: str, template: str, status: int) -> tuple:
        key = (method, template, status)
        samples = self._samples.get(key)
        if samples is None:
            samples = (
                self.duration.labels(method, template, str(status)),
                self.total.labels(method, str(status)),
            )
            if len(self._samples) < MAX_KEPT_LABEL_SETS:
                self._samples[key] = samples
        return samples

    def after_request(self, response: Response) -> Response:
        """Count the request and observe its latency (since ``g.request_started``)."""
        current = request._get_current_object()  # one proxy lookup for both reads
        duration, total = self._samples_for(current.method, route(current), response.status_code)
        duration.observe(max(time.perf_counter() - g.request_started, 0.0))
        total.inc()
        return response

    def teardown_request(self, error: BaseException | None = None) -> None:
        """An exception no handler turned into a response: count it as a 500."""
        if error is not None:
            self.exceptions.labels(request.method, "500").inc()


def register_metrics(app: Flask) -> PrometheusMetrics:
    """Serve ``/metrics``: request counts and latency per route template and status."""
    registry = CollectorRegistry()
    for counter in COUNTERS:
        registry.register(counter)
    samples = RequestMetrics(registry)
    app.after_request(samples.after_request)
    app.teardown_request(samples.teardown_request)
    return PrometheusMetrics(app, registry=registry, export_defaults=False)
