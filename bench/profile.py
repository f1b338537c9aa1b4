"""Profile one endpoint in-process with pyinstrument, against a loaded bench database.

    BENCH_DATABASE_URL=postgresql://... python -m bench.profile /students/42 [requests]

Uses the production configuration and Flask's test client, so the profile shows
the application's own cost per request (routing, queries, serialization)
without the HTTP server in front of it.
"""

import random
import sys

from pyinstrument import Profiler

from bench.timing import production_client, random_student_url


def main() -> None:
    path = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    client = production_client()
    rng = random.Random(1)

    def url() -> str:
        return random_student_url(path, rng)

    for _ in range(50):
        client.get(url())
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(count):
        response = client.get(url())
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=True))
    print(f"{profiler.last_session.duration / count * 1000:.3f} ms per request")


if __name__ == "__main__":
    main()
