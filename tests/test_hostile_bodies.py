"""Bodies and requests that must cost nothing to refuse, in the app and under real gunicorn.

The bad-input matrix (tests/test_bad_input.py) sends the hostile bodies to
every endpoint and checks status, problem and database; these tests check what
the matrix cannot: the work done before a refusal, the logs, chunked transfer
and gunicorn's own answers.
"""

import io
import json
import logging
import socket

import pytest

from app.bodies import TOO_MANY_VALUES
from app.problems import problem_type
from app.schemas import Id
from config import MAX_BODY_BYTES
from tests.support.databases import student_emails
from tests.support.servers import GunicornServer

MIB = 1024 * 1024


def test_an_over_long_array_is_refused_before_any_element_is_read(
    client, make_student, monkeypatch
):
    student = make_student()
    deserialized = []
    original = Id._deserialize

    def counting(self, value, attr, data, **kwargs):
        deserialized.append(value)
        return original(self, value, attr, data, **kwargs)

    monkeypatch.setattr(Id, "_deserialize", counting)
    url = f"/students/{student}/courses"
    body = b'{"course_ids": [' + b",".join([b"1"] * 520_000) + b"]}"
    assert len(body) < MAX_BODY_BYTES

    unparsed = client.post(url, data=body, content_type="application/json")
    refused = client.post(url, json={"course_ids": [1] * 4_000})
    accepted_shape = client.post(url, json={"course_ids": [7, 8]})

    assert unparsed.status_code == 400
    assert unparsed.get_json()["detail"] == TOO_MANY_VALUES
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == [
        {
            "location": "json",
            "pointer": "/course_ids",
            "detail": "Must have between 1 and 100 items.",
        }
    ]
    # The spy sees the two ids of the well-sized list, and none of the others.
    assert deserialized == [7, 8]
    assert accepted_shape.status_code == 422


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"[" * 2_000 + b"]" * 2_000, "The JSON body is nested too deeply."),
        (b"[" * 50_000 + b"]" * 50_000, "The JSON body holds too many values"),
        (b'{"name": ' + b"9" * 10_000 + b"}", "The JSON body holds a number literal too long"),
    ],
    ids=["nested", "nested-past-the-value-bound", "long-integer"],
)
def test_unreadable_json_is_a_400_without_a_logged_traceback(client, caplog, raw, detail):
    with caplog.at_level(logging.INFO):
        response = client.post("/students", data=raw, content_type="application/json")

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"].startswith(detail)
    assert not [record for record in caplog.records if record.exc_info]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("size", "status"), [(MIB + 1, 413), (MIB, 422)], ids=["one-byte-over", "at-the-limit"]
)
def test_a_chunked_body_is_held_to_the_size_limit_in_the_app(app, size, status):
    body = b'{"x": "' + b"a" * (size - 9) + b'"}'
    assert len(body) == size
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/students",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": io.StringIO(),
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": "application/json",
    }
    started = []

    answer = b"".join(app(environ, lambda status_line, _headers: started.append(status_line)))

    assert started[0].startswith(str(status))
    assert json.loads(answer)["status"] == status


# --- under real gunicorn ------------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory, databases):
    """One gunicorn (2 sync workers) on a migrated database: (server, database URL)."""
    database_url = databases.migrated("bodies")
    with GunicornServer(tmp_path_factory.mktemp("bodies"), database_url=database_url) as server:
        yield server, database_url


def raw_exchange(port: int, head: bytes, chunks=()) -> tuple[int, dict, bytes]:
    """Send a raw request (head, then each chunk in chunked framing); read the whole answer.

    The request is left open after the chunks when no final chunk is given, as a
    client still sending would leave it: the server must answer without the rest.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        for chunk in chunks:
            connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(65536)
        head_part, _, body = answer.partition(b"\r\n\r\n")
        lines = head_part.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        while len(body) < int(headers.get("Content-Length", "0")):
            body += connection.recv(65536)
    return int(lines[0].split()[1]), headers, body


CHUNKED_HEAD = (
    b"POST /students HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


@pytest.mark.slow
def test_a_chunked_body_over_1_mib_is_413_under_gunicorn(gunicorn):
    server, database_url = gunicorn
    email = b"chunked-huge@example.edu"
    padding = b" " * (64 * 1024)
    chunks = [b'{"email": "' + email + b'", "name": "Big"', *[padding] * 17]
    assert sum(map(len, chunks)) > MIB

    status, headers, body = raw_exchange(server.port, CHUNKED_HEAD, chunks)

    assert status == 413, body
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["detail"].endswith("the limit is 1048576 bytes.")
    assert email.decode() not in student_emails(database_url)


@pytest.mark.slow
def test_a_chunked_body_under_the_limit_is_read_whole_under_gunicorn(gunicorn):
    server, database_url = gunicorn
    # Just under the limit, so a body cut anywhere before its end would be invalid JSON.
    document = b'{"name": "Chunked", "email": "chunked@example.edu"}'
    padded = document[:-1] + b" " * (MIB - len(document) - 1) + b"}"
    chunks = [padded[start : start + 65536] for start in range(0, len(padded), 65536)]

    status, _headers, body = raw_exchange(server.port, CHUNKED_HEAD, [*chunks, b""])

    assert status == 201, body
    assert "chunked@example.edu" in student_emails(database_url)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        pytest.param(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414, id="request-line"),
        pytest.param(
            b"GET /livez HTTP/1.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 431, id="header"
        ),
        pytest.param(b"get /livez HTTP/1.1\r\nHost: x\r\n\r\n", 400, id="lower-case-method"),
    ],
)
def test_gunicorn_answers_what_it_cannot_parse_with_problem_json(gunicorn, request_head, status):
    server, _database_url = gunicorn

    answer_status, headers, body = raw_exchange(server.port, request_head)

    assert answer_status == status
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    kind = problem_type(status)
    assert (problem["status"], problem["type"], problem["title"]) == (status, kind.uri, kind.title)
    assert problem["instance"] == headers["X-Request-ID"]
    assert problem["detail"]
