"""Time endpoints in-process (no HTTP server, one request at a time), against a bench database.

    BENCH_DATABASE_URL=postgresql://... python -m bench.timing /livez "/students/{id}"

Prints the best of three rounds of 500 requests, wall and CPU milliseconds per
request; ``{id}`` is replaced by a random student id. Used to weigh each change
to the code on its own, away from the noise of a full load run. Each path is
also timed on its reference app (``bench/reference.py``: the bare Flask app for
``/livez``, the lean one for the reads), and the CPU ratio printed.
"""

import os
import random
import sys
import time

from config import normalize_database_url

ROUNDS = 3
REQUESTS = 500


def production_client():
    """A test client of the app in its production configuration, on the bench database."""
    os.environ.update(
        APP_ENV="production",
        AUTH_MODE="none",
        SECRET_KEY="bench-only-secret",  # noqa: S106 - a throwaway local process
        # As in the load benchmark's default (bench/run.py --rate-limits off).
        RATELIMIT_ENABLED="false",
        DATABASE_URL=normalize_database_url(os.environ["BENCH_DATABASE_URL"]),
    )
    from app import create_app

    return create_app().test_client()


def random_student_url(path: str, rng: random.Random) -> str:
    """``path`` with ``{id}`` replaced by a random student id of the default data set."""
    return path.replace("{id}", str(rng.randint(1, 10_000)))


def best_of_rounds(client, path: str, rng: random.Random) -> tuple[float, float]:
    """The best wall and CPU milliseconds per request of ``path`` over the rounds."""

    def url() -> str:
        return random_student_url(path, rng)

    for _ in range(100):
        client.get(url())
    wall = cpu = float("inf")
    for _ in range(ROUNDS):
        started, started_cpu = time.perf_counter(), time.process_time()
        for _ in range(REQUESTS):
            if client.get(url()).status_code != 200:
                raise SystemExit(f"{path} did not answer 200")
        wall = min(wall, (time.perf_counter() - started) / REQUESTS * 1000)
        cpu = min(cpu, (time.process_time() - started_cpu) / REQUESTS * 1000)
    return wall, cpu


def main() -> None:
    client = production_client()
    from bench.reference import bare, lean

    references = {"bare": bare.test_client(), "lean": lean.test_client()}
    rng = random.Random(1)
    for path in sys.argv[1:]:
        name = "bare" if path == "/livez" else "lean"
        wall, cpu = best_of_rounds(client, path, rng)
        _ref_wall, ref_cpu = best_of_rounds(references[name], path, rng)
        print(
            f"{path:40} {wall:7.3f} ms wall {cpu:7.3f} ms CPU per request; "
            f"{name} {ref_cpu:7.3f} ms CPU: ratio {ref_cpu / cpu:.2f}"
        )


if __name__ == "__main__":
    main()
