"""LOG_FORMAT: readable text lines in development, JSON lines elsewhere, one definition of each."""

import json
import logging
import re
import sys

import pytest

from config import load_config, log_format
from logformat import JsonLineFormatter, TextLineFormatter, configured_formatter
from tests.support.servers import GunicornServer

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ +[\w.]+: ")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "text"),
        ({"APP_ENV": "development"}, "text"),
        ({"APP_ENV": "development", "LOG_FORMAT": ""}, "text"),
        ({"APP_ENV": "testing"}, "json"),
        ({"APP_ENV": "production", "SECRET_KEY": "s"}, "json"),
        ({"APP_ENV": "production", "SECRET_KEY": "s", "LOG_FORMAT": "text"}, "text"),
        ({"APP_ENV": "development", "LOG_FORMAT": "JSON"}, "json"),
    ],
)
def test_the_log_format_follows_log_format_or_else_app_env(environ, expected):
    assert log_format(environ) == expected
    assert load_config(environ)["LOG_FORMAT"] == expected


def test_an_unknown_log_format_is_refused():
    with pytest.raises(RuntimeError, match="LOG_FORMAT must be one of json, text, not 'xml'"):
        load_config({"LOG_FORMAT": "xml"})


def test_the_configured_formatter_is_the_one_log_format_names(monkeypatch):
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert type(configured_formatter()) is TextLineFormatter

    monkeypatch.setenv("LOG_FORMAT", "json")
    assert type(configured_formatter()) is JsonLineFormatter


def failing_record() -> logging.LogRecord:
    """An ERROR record with a traceback and two extra fields."""
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("app.requests", logging.ERROR, __file__, 1, "GET %s 500", ("/x",),
                               exc_info)  # fmt: skip
    record.request_id = "req-1"
    record.status = 500
    return record


def test_a_text_line_shows_time_level_logger_message_extras_then_the_traceback():
    lines = TextLineFormatter().format(failing_record()).splitlines()

    assert TEXT_LINE.match(lines[0])
    assert lines[0].endswith("ERROR   app.requests: GET /x 500  request_id=req-1 status=500")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"


def test_a_json_line_carries_the_same_record_as_one_object():
    entry = json.loads(JsonLineFormatter().format(failing_record()))

    assert (entry["level"], entry["logger"], entry["message"]) == ("ERROR", "app.requests",
                                                                   "GET /x 500")  # fmt: skip
    assert (entry["request_id"], entry["status"]) == ("req-1", 500)
    assert "ValueError: boom" in entry["exc_info"]


@pytest.mark.slow
def test_gunicorn_and_the_app_log_text_lines_in_development(tmp_path, databases):
    database = databases.migrated("textlogs")
    server = GunicornServer(
        tmp_path, database_url=database, workers=1, env={"APP_ENV": "development"}
    )

    with server:
        server.get("/students", headers={"X-Request-ID": "dev-1"})

    lines = server.log().splitlines()
    assert all(TEXT_LINE.match(line) for line in lines), lines
    assert any(" gunicorn.error: Booting worker with pid" in line for line in lines)
    [request] = [line for line in lines if " app.requests: GET /students" in line]
    assert " INFO    app.requests: GET /students 200  request_id=dev-1 " in request


@pytest.mark.slow
def test_log_format_json_gives_json_lines_in_development_too(tmp_path, databases):
    database = databases.migrated("jsonlogs")
    server = GunicornServer(
        tmp_path,
        database_url=database,
        workers=1,
        env={"APP_ENV": "development", "LOG_FORMAT": "json"},
    )

    with server:
        server.get("/students", headers={"X-Request-ID": "dev-2"})

    entries = server.log_lines()  # fails on any line that is not JSON
    assert any(e["message"].startswith("Booting worker with pid") for e in entries)
    [request] = [e for e in entries if e.get("path") == "/students"]
    assert (request["message"], request["request_id"]) == ("GET /students 200", "dev-2")
