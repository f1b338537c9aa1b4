"""Time endpoints in-process (no HTTP server, one request at a time), against a bench database.

    BENCH_DATABASE_URL=postgresql://... python -m bench.timing /livez "/students/{id}"

Prints the best of three rounds of 500 requests, wall and CPU milliseconds per
request; ``{id}`` is replaced by a random student id. Used to weigh each change
to the code on its own, away from the noise of a full load run.
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
        # Limits on (counted per request), but never refusing the one local client.
        RATELIMIT_GLOBAL="100000000 per minute",
        DATABASE_URL=normalize_database_url(os.environ["BENCH_DATABASE_URL"]),
    )
    from app import create_app

    return create_app().test_client()


def random_student_url(path: str, rng: random.Random) -> str:
    """``path`` with ``{id}`` replaced by a random student id of the default data set."""
    return path.replace("{id}", str(rng.randint(1, 10_000)))


def main() -> None:
    client = production_client()
    rng = random.Random(1)
    for path in sys.argv[1:]:

        def url(path=path) -> str:
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
        print(f"{path:40} {wall:7.3f} ms wall {cpu:7.3f} ms CPU per request")


if __name__ == "__main__":
    main()
