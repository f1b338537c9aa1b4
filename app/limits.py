"""Rate limits: how much one caller or one client address may ask for.

flask-limiter counts requests in ``RATELIMIT_STORAGE_URI`` (Redis in
production, shared by every worker and instance; memory, per process, in
development). Four limits, each a setting in the ``limits`` notation (README
"Rate limits"):

- ``RATELIMIT_AUTH_FAILURES``: failed authentications (401s) per client address;
- ``RATELIMIT_WRITES``: POST, PUT, PATCH and DELETE requests per caller;
- ``RATELIMIT_SEARCHES``: requests with a ``q=`` search per caller;
- ``RATELIMIT_GLOBAL``: every API request per client address.

A refused request is a 429 problem (type ``rate-limited``, the 429's type in
:mod:`app.problems`) with ``Retry-After``; every limited
response carries the IETF ``RateLimit-Policy`` and ``RateLimit`` fields.
When the storage cannot be reached the limits fail open: the request is
served, a warning is logged once per outage and process, and the
``rate_limits_failed_open`` counter counts each request served unlimited;
the storage is asked again every second and the limits come back with it.

Authentication (:mod:`app.auth.policy`) records the caller before the limits
run, and calls :func:`refuse_after_failed_authentications` before it looks at
credentials. "Per caller" is per token name or per JWT issuer and subject;
without an authenticated caller it is per client address.
"""

import logging
import math
import time
from dataclasses import dataclass, field

from apispec import BasePlugin
from flask import Flask, Response, current_app, g, request
from flask_limiter import ApplicationLimit, Limiter
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from werkzeug.exceptions import TooManyRequests

from app.auth.caller import ANONYMOUS, UNRESTRICTED
from app.metrics import RATE_LIMITS_FAILED_OPEN
from app.routing import WRITE_METHODS

EXTENSION = "enrollment_rate_limits"
RATE_LIMITED_RESPONSE = "RATE_LIMITED"
# Probes and scrapes are never limited: an orchestrator must always reach them.
EXEMPT_BLUEPRINTS = frozenset({"health"})
EXEMPT_ENDPOINTS = frozenset({"prometheus_metrics"})
STORAGE_RECHECK_SECONDS = 1.0
# A Redis that stops answering must not hold a worker: give up on it quickly.
REDIS_OPTIONS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}

logger = logging.getLogger(__name__)


def current_caller_id() -> str | None:
    """The authenticated caller's stable, non-secret id, or None when nobody authenticated.

    In ``AUTH_MODE=none`` every caller is the same unrestricted one, so the
    limits there count per client address.
    """
    caller = g.get("caller")
    if caller is None or caller in (ANONYMOUS, UNRESTRICTED):
        return None
    return f"{caller.issuer or 'token'}:{caller.name}"


def address_key() -> str:
    """The rate-limit key of the client address (after ``TRUSTED_PROXIES``)."""
    return f"address:{request.remote_addr}"


def caller_key() -> str:
    """The rate-limit key of the authenticated caller, else of the client address."""
    caller = current_caller_id()
    return f"caller:{caller}" if caller else address_key()


@dataclass
class StorageHealth:
    """Whether this process reaches the limit storage; the limits fail open while it does not."""

    limiter: Limiter
    down: bool = False
    next_check: float = 0.0

    def failed(self, error: Exception) -> None:
        """Note an unreachable storage, with one warning per outage."""
        if not self.down:
            logger.warning(
                "rate limit storage unreachable (%s): requests are served without rate limits "
                "until it answers again",
                type(error).__name__,
            )
            self.down = True
            self.next_check = time.monotonic() + STORAGE_RECHECK_SECONDS

    def unreachable(self) -> bool:
        """True while the storage is unreachable (asked again at most once a second)."""
        if self.down and time.monotonic() >= self.next_check:
            self.next_check = time.monotonic() + STORAGE_RECHECK_SECONDS
            if self.limiter.storage.check():
                logger.warning("rate limit storage answers again: rate limits are back on")
                self.down = False
        return self.down


@dataclass
class RateLimits:
    """The app's limiter, its storage health and the failed-authentication limit."""

    limiter: Limiter
    auth_failures: list[RateLimitItem]
    health: StorageHealth = field(init=False)

    def __post_init__(self):
        self.health = StorageHealth(self.limiter)

    def counter(self, name: str, key: str) -> list[str]:
        """The storage identifiers of one limit for one key."""
        return [current_app.config["RATELIMIT_KEY_PREFIX"], key, name]


@dataclass
class AppliedLimit:
    """A limit that counted this request, as the response headers describe it."""

    name: str
    item: RateLimitItem
    identifiers: list[str]


def rate_limits() -> RateLimits | None:
    """The current app's rate limits, or None when ``RATELIMIT_ENABLED`` is false."""
    return current_app.extensions.get(EXTENSION)


def limits_fail_open(limits: RateLimits) -> bool:
    """Whether this request is served without limits (decided once per request, and counted)."""
    if "rate_limits_open" not in g:
        g.rate_limits_open = limits.health.unreachable()
        if g.rate_limits_open:
            RATE_LIMITS_FAILED_OPEN.inc()
    return g.rate_limits_open


def storage_failed(limits: RateLimits, error: Exception) -> None:
    """The storage failed during this request: serve it unlimited, and the next ones too."""
    limits.health.failed(error)
    if not g.get("rate_limits_open"):
        g.rate_limits_open = True
        RATE_LIMITS_FAILED_OPEN.inc()


def refuse_after_failed_authentications() -> None:
    """Answer 429 when this address used up its failed authentications (call before checking).

    The check comes before the credentials are looked at, so an address that
    has guessed too often learns nothing more, not even from a right guess.
    """
    limits = rate_limits()
    if limits is None or limits_fail_open(limits):
        return
    identifiers = limits.counter("auth-failures", address_key())
    try:
        for item in limits.auth_failures:
            if not limits.limiter.limiter.test(item, *identifiers):
                g.applied_rate_limit = AppliedLimit("auth-failures", item, identifiers)
                setting = current_app.config["RATELIMIT_AUTH_FAILURES"]
                raise TooManyRequests(
                    f"Too many failed authentications: at most {setting} per client address."
                )
    except StorageError as error:
        storage_failed(limits, error)


def count_failed_authentication(limits: RateLimits) -> None:
    """Count a 401 against the client address."""
    identifiers = limits.counter("auth-failures", address_key())
    for item in limits.auth_failures:
        limits.limiter.limiter.hit(item, *identifiers)
    g.applied_rate_limit = AppliedLimit("auth-failures", limits.auth_failures[0], identifiers)


def skip_unlimited_requests() -> bool:
    """flask-limiter request filter: probes, scrapes and requests while the storage is down."""
    if request.blueprint in EXEMPT_BLUEPRINTS or request.endpoint in EXEMPT_ENDPOINTS:
        return True
    if limits_fail_open(rate_limits()):
        return True
    g.rate_limits_evaluated = True
    return False


def applied_limits(limits: RateLimits) -> list[AppliedLimit]:
    """The limits that counted this request, the breached one first (empty: none did)."""
    if "applied_rate_limit" in g:
        return [g.applied_rate_limit]
    if not g.get("rate_limits_evaluated"):
        return []
    evaluated = limits.limiter.current_limits
    if not evaluated:
        # flask-limiter swallowed a storage error before it could count the request.
        storage_failed(limits, StorageError(ConnectionError("rate limit evaluation failed")))
        return []
    ordered = sorted(evaluated, key=lambda current: not current.breached)
    return [
        AppliedLimit(current.request_args[-1], current.limit, current.request_args)
        for current in ordered
    ]


def add_rate_limit_headers(response: Response) -> Response:
    """Count 401s; describe the limits in ``RateLimit-Policy`` and ``RateLimit`` fields."""
    limits = rate_limits()
    try:
        if response.status_code == 401 and not limits_fail_open(limits):
            count_failed_authentication(limits)
        applied = applied_limits(limits)
        windows = [
            limits.limiter.limiter.get_window_stats(limit.item, *limit.identifiers)
            for limit in applied
        ]
    except StorageError as error:
        storage_failed(limits, error)
        return response
    if not applied:
        return response
    now = time.time()
    resets = [max(0, math.ceil(reset_at - now)) for reset_at, _remaining in windows]
    response.headers["RateLimit-Policy"] = ", ".join(
        f'"{limit.name}";q={limit.item.amount};w={limit.item.get_expiry()}' for limit in applied
    )
    response.headers["RateLimit"] = ", ".join(
        f'"{limit.name}";r={remaining};t={reset}'
        for limit, (_reset_at, remaining), reset in zip(applied, windows, resets, strict=True)
    )
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, resets[0]))
    return response


def build_limiter(config: dict) -> Limiter:
    """A flask-limiter Limiter with the service's three request limits."""

    def limit(setting: str, name: str, key, per: str, **kwargs) -> ApplicationLimit:
        value = config[setting]
        return ApplicationLimit(
            value,
            key_function=key,
            scope=name,
            error_message=f"Too many {name}: at most {value} per {per}.",
            **kwargs,
        )

    storage_uri = config["RATELIMIT_STORAGE_URI"]
    options = {"wrap_exceptions": True}
    if storage_uri.startswith(("redis://", "rediss://", "redis+")):
        options.update(REDIS_OPTIONS)
    return Limiter(
        caller_key,
        application_limits=[
            limit("RATELIMIT_GLOBAL", "requests", address_key, "client address"),
            limit("RATELIMIT_WRITES", "writes", caller_key, "caller", methods=WRITE_METHODS),
            limit(
                "RATELIMIT_SEARCHES",
                "searches",
                caller_key,
                "caller",
                exempt_when=lambda: not request.args.get("q"),
            ),
        ],
        storage_uri=storage_uri,
        storage_options=options,
        strategy="fixed-window",
        headers_enabled=False,
        swallow_errors=True,
        key_prefix=config["RATELIMIT_KEY_PREFIX"],
    )


class RateLimitPlugin(BasePlugin):
    """Document the 429 answer, with its headers, on every operation (each one is counted)."""

    def init_spec(self, spec):
        """Register the 429 response: problem+json, ``Retry-After`` and the RateLimit fields."""
        spec.components.response(
            RATE_LIMITED_RESPONSE,
            {
                "description": "Too Many Requests: a rate limit is used up (README: Rate limits)",
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
                "headers": {
                    "Retry-After": {
                        "description": "Seconds until the limit resets",
                        "schema": {"type": "integer"},
                    },
                    "RateLimit-Policy": {
                        "description": 'The limits that applied, e.g. "writes";q=60;w=60',
                        "schema": {"type": "string"},
                    },
                    "RateLimit": {
                        "description": 'What is left of them, e.g. "writes";r=0;t=42',
                        "schema": {"type": "string"},
                    },
                },
            },
        )

    def operation_helper(self, path=None, operations=None, **kwargs):
        """Add the 429 response to every operation."""
        for operation in (operations or {}).values():
            operation.setdefault("responses", {}).setdefault("429", RATE_LIMITED_RESPONSE)


def register_rate_limits(app: Flask) -> None:
    """Install the limits unless ``RATELIMIT_ENABLED`` is false (the 429 is documented anyway).

    Call after the request pipeline is registered: flask-limiter's check then
    runs after authentication, when the caller is known.
    """
    if not app.config["RATELIMIT_ENABLED"]:
        return
    if app.config["APP_ENV"] == "production" and app.config["RATELIMIT_STORAGE_URI"] == "memory://":
        logger.warning(
            "RATELIMIT_STORAGE_URI is not set: each worker process counts requests on its own"
        )
    limiter = build_limiter(app.config)
    limiter.request_filter(skip_unlimited_requests)
    limiter.init_app(app)
    app.extensions[EXTENSION] = RateLimits(
        limiter, parse_many(app.config["RATELIMIT_AUTH_FAILURES"])
    )
    app.after_request(add_rate_limit_headers)
