"""Rate limits in the app (memory storage): which requests count, against which key, and how.

The same limits with Redis under real gunicorn, and Redis stopped under load,
are in tests/test_rate_limits_redis.py.
"""

import logging

import pytest

from app.extensions import db
from app.limits import address_key, caller_key
from app.models import Student
from config import auth_settings, load_config
from tests.support.databases import make_app
from tests.support.servers import free_port

SPACED = {"RATELIMIT_GLOBAL": "1000 per minute"}


@pytest.fixture
def limited(app):
    """Build apps with limits on (memory storage) on the suite's migrated database."""
    built = []

    def build(**settings):
        application = make_app(
            app.config["SQLALCHEMY_DATABASE_URI"],
            **{"RATELIMIT_ENABLED": True, **SPACED, **settings},
        )
        built.append(application)
        return application

    yield build
    for application in built:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def client_at(application, address: str):
    """A test client whose requests come from ``address``."""
    client = application.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_searches_are_limited_per_caller_with_a_429_problem_and_headers(limited, make_course):
    make_course(code="CS101")
    client = client_at(limited(RATELIMIT_SEARCHES="2 per minute"), "198.51.100.1")

    answers = [client.get("/courses?q=CS") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["detail"] == ("Too many searches: at most 2 per minute per caller.")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Policy"].startswith('"searches";q=2;w=60')
    assert refused.headers["RateLimit"].startswith('"searches";r=0;t=')
    assert answers[0].headers["RateLimit"].split(", ")[1].startswith('"searches";r=1;')


def test_reads_without_q_are_not_counted_as_searches(limited):
    client = client_at(limited(RATELIMIT_SEARCHES="1 per minute"), "198.51.100.2")

    statuses = [client.get("/courses").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]


def test_writes_are_limited_and_the_refused_write_changes_nothing(limited, db_rows):
    client = client_at(limited(RATELIMIT_WRITES="2 per minute"), "198.51.100.3")

    answers = [
        client.post("/students", json={"name": f"S{n}", "email": f"w{n}@example.edu"})
        for n in range(3)
    ]

    assert [answer.status_code for answer in answers] == [201, 201, 429]
    assert answers[2].get_json()["detail"] == "Too many writes: at most 2 per minute per caller."
    assert sorted(student.email for student in db_rows(Student)) == [
        "w0@example.edu",
        "w1@example.edu",
    ]


def test_the_global_limit_counts_every_api_request_per_address(limited):
    application = limited(RATELIMIT_GLOBAL="3 per minute")
    client = client_at(application, "198.51.100.4")
    other = client_at(application, "198.51.100.5")

    statuses = [client.get("/courses").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    assert other.get("/courses").status_code == 200


def test_probes_and_metrics_are_never_limited(limited):
    client = client_at(limited(RATELIMIT_GLOBAL="1 per minute"), "198.51.100.6")

    statuses = [client.get(path).status_code for path in ("/livez", "/metrics") * 3]

    assert statuses == [200] * 6
    assert client.get("/courses").status_code == 200
    assert client.get("/courses").status_code == 429


def test_failed_authentications_lock_the_address_out_even_with_the_right_token(limited, db_rows):
    token = "t" * 40
    application = limited(
        **auth_settings({"AUTH_MODE": "tokens", "API_TOKENS": f"registrar:registrar:{token}"}, ""),
        RATELIMIT_AUTH_FAILURES="3 per minute",
    )
    client = client_at(application, "198.51.100.7")
    neighbour = client_at(application, "198.51.100.8")
    wrong = {"Authorization": "Bearer wrong-guess"}
    right = {"Authorization": f"Bearer {token}"}
    student = {"name": "Ada", "email": "ada@example.edu"}

    guesses = [client.post("/students", json=student, headers=wrong) for _ in range(3)]
    locked = client.post("/students", json=student, headers=right)

    assert [guess.status_code for guess in guesses] == [401, 401, 401]
    assert guesses[0].headers["RateLimit"].startswith('"auth-failures";r=2;')
    assert locked.status_code == 429
    assert locked.get_json()["detail"] == (
        "Too many failed authentications: at most 3 per minute per client address."
    )
    assert locked.headers["RateLimit-Policy"] == '"auth-failures";q=3;w=60'
    assert int(locked.headers["Retry-After"]) >= 1
    assert db_rows(Student) == []
    assert neighbour.post("/students", json=student, headers=right).status_code == 201


def test_trusted_proxies_decide_which_address_is_limited(limited):
    def statuses(trusted: int) -> list[int]:
        application = limited(RATELIMIT_GLOBAL="1 per minute", TRUSTED_PROXIES=trusted)
        proxy = client_at(application, "10.0.0.2")
        return [
            proxy.get("/courses", headers={"X-Forwarded-For": client}).status_code
            for client in ("203.0.113.1", "203.0.113.2")
        ]

    # Behind one trusted proxy each client has its own budget; with none, a
    # client cannot escape its budget by sending X-Forwarded-For itself.
    assert statuses(trusted=1) == [200, 200]
    assert statuses(trusted=0) == [200, 429]


def test_rate_limits_off_turns_every_limit_off(limited):
    client = client_at(
        limited(RATELIMIT_ENABLED=False, RATELIMIT_GLOBAL="1 per minute"), "198.51.100.9"
    )

    answers = [client.get("/courses?q=x") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert "RateLimit" not in answers[2].headers


def test_in_none_mode_the_caller_key_is_the_client_address(app):
    with app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.10"}):
        app.preprocess_request()
        assert caller_key() == address_key() == "address:192.0.2.10"


def test_writes_are_limited_per_authenticated_caller_not_per_address(limited, db_rows):
    first, second = "a" * 40, "b" * 40
    tokens = f"frontend:registrar:{first},batch:registrar:{second}"
    application = limited(
        **auth_settings({"AUTH_MODE": "tokens", "API_TOKENS": tokens}, ""),
        RATELIMIT_WRITES="2 per minute",
    )
    client = client_at(application, "198.51.100.9")

    def create(token: str, number: int):
        student = {"name": f"S{number}", "email": f"s{number}@example.edu"}
        return client.post("/students", json=student, headers={"Authorization": f"Bearer {token}"})

    answers = [create(first, number).status_code for number in range(3)]
    other = create(second, 3)

    assert answers == [201, 201, 429]
    assert other.status_code == 201
    assert len(db_rows(Student)) == 3


def test_limits_and_switches_come_from_the_environment():
    config = load_config(
        {
            "RATELIMIT_WRITES": "5 per second",
            "RATELIMIT_SEARCHES": "10/minute;100/hour",
            "RATELIMIT_ENABLED": "false",
            "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/5",
            "TRUSTED_PROXIES": "2",
        }
    )

    assert config["RATELIMIT_WRITES"] == "5 per second"
    assert config["RATELIMIT_SEARCHES"] == "10/minute;100/hour"
    assert config["RATELIMIT_AUTH_FAILURES"] == "20 per minute"
    assert config["RATELIMIT_GLOBAL"] == "1200 per minute"
    assert config["RATELIMIT_ENABLED"] is False
    assert config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/5"
    assert config["TRUSTED_PROXIES"] == 2
    development = load_config({})
    assert development["RATELIMIT_ENABLED"] is True
    assert development["RATELIMIT_STORAGE_URI"] == "memory://"
    assert development["TRUSTED_PROXIES"] == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RATELIMIT_WRITES", "lots", "RATELIMIT_WRITES is not a rate limit"),
        ("RATELIMIT_ENABLED", "maybe", "RATELIMIT_ENABLED must be true or false"),
        ("TRUSTED_PROXIES", "-1", "TRUSTED_PROXIES must be a whole number"),
    ],
)
def test_a_malformed_setting_stops_start_up_naming_it(name, value, message):
    with pytest.raises(RuntimeError, match=message):
        load_config({name: value})


def test_every_operation_documents_its_429_with_the_rate_limit_headers(client):
    spec = client.get("/openapi.json").get_json()

    response = spec["components"]["responses"]["RATE_LIMITED"]
    assert set(response["headers"]) == {"Retry-After", "RateLimit-Policy", "RateLimit"}
    assert "application/problem+json" in response["content"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method != "parameters":
                assert operation["responses"]["429"] == {
                    "$ref": "#/components/responses/RATE_LIMITED"
                }, (method, path)


def test_automatic_options_answers_claim_no_media_type(client):
    response = client.options("/students")

    assert response.status_code == 200
    assert "Content-Type" not in response.headers
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert response.get_data() == b""


def test_an_unreachable_storage_fails_open_with_one_warning(limited, caplog):
    closed_port = free_port()  # nothing listens there
    application = limited(
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port}/0",
        RATELIMIT_SEARCHES="1 per minute",
    )
    client = client_at(application, "198.51.100.10")

    with caplog.at_level(logging.WARNING, logger="app.limits"):
        statuses = [client.get("/courses?q=x").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    warnings = [record.getMessage() for record in caplog.records if record.name == "app.limits"]
    assert len(warnings) == 1
    assert warnings[0].startswith("rate limit storage unreachable")
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "rate_limits_failed_open_total 3.0" in metrics
