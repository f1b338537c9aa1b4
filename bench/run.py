"""Load benchmark: bulk-load a data set, serve it under gunicorn, drive it with wrk.

Run from the repository root (``make bench`` does)::

    python -m bench.run                      # SQLite, default scale
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench python -m bench.run
    python -m bench.run --scale large --instances 2
    python -m bench.run --compare-scales     # both scales side by side, in one run
    python -m bench.run --instances 2 --pooler   # through PgBouncer (PostgreSQL only)

``BENCH_DATABASE_URL`` names a scratch PostgreSQL database: it is created when
missing (and then dropped at the end), and its tables are emptied and reloaded.
Without it the data set goes to a temporary SQLite file.

Every scenario is measured against the same gunicorn (started by the test
suite's launcher, on free ports of ``TEST_PORT_MIN``..``TEST_PORT_MAX``). Beside
it, with the same gunicorn settings on the same database, run the references of
``bench/reference.py``: a bare Flask ``/livez`` and a lean Flask + psycopg app
serving the same reads. A scenario with a reference is measured in turns
(reference, service, service, reference, ... for ``--rounds`` turns) so that a
noisy machine weighs on both alike, and reported as a ratio to it; the other
scenarios as a ratio to the bare ``/livez``. The lists are read after a cursor
at random depths, and by number on their first page. The ``jwt`` scenarios run
the same reads against a second service in ``AUTH_MODE=jwt`` (a JWKS served
over HTTP, a signed token on every request). ``--rate-limits`` turns the rate
limits on (per-worker memory or Redis), with the limits raised so that the load
generator is never refused.

After the scenarios, the ``memory`` scenario serves the mixed workload from a
fresh service and reads each worker's resident memory after 10,000 and after
100,000 requests; then the registration-morning scenario
(``bench/registration.py``, ``--morning-connections`` clients) measures
enrollments per second into one hot course and into spread-out courses,
checked against the rows. ``--only`` picks scenarios by name, ``memory`` and
``registration`` included.

``--compare-scales`` loads the default scale and the large one into databases
of their own (the large one's name ends in ``_large``), serves both side by
side and measures them scenario by scenario in turns; the report adds each
scenario's latency at the large scale as a multiple of the default scale's.
The memory and registration-morning scenarios run at the large scale.

``--pooler`` puts a private PgBouncer in transaction mode
(``tests/support/pgbouncer.py``, ``POOLER_POOL_SIZE`` server connections)
between the services and PostgreSQL, and runs them with
``DATABASE_POOLER=pgbouncer``; the reference apps keep their direct
connections, so the ratios include what the pooler costs.

The results are printed as a table, written as JSON and drawn as a PNG chart
in ``bench/results/`` (not committed: the figures that matter go to
``docs/PERFORMANCE.md``). The exit status is non-zero when any response is a
5xx, a request fails at the socket level, a p99 exceeds 2 seconds, or the
registration morning's rows disagree with its answers; with
``--check-targets`` also when a ratio misses its target or memory grows by
more than 10 %.
"""

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from app.pages import SortKey, encode_cursor
from bench import dataset, loadgen, registration
from tests.support.pgbouncer import PgBouncer
from tests.support.servers import GUNICORN, ROOT, GunicornServer

RESULTS = ROOT / "bench" / "results"
P99_LIMIT_MS = 2000.0
REQUESTS_PER_THREAD = 2000
# The service and the reference apps run under the same settings (gunicorn.conf.py).
SERVE = (GUNICORN, "-c", "gunicorn.conf.py", "--backlog", "2048")
SERVICE_APP = "wsgi:app"
REFERENCE_APPS = {"bare": "bench.reference:bare", "lean": "bench.reference:lean"}
# With --rate-limits memory or redis the limits count every request, with the global and
# write limits per client address raised so that the load generator (one address) is
# never refused.
BENCH_RATE_LIMIT = "100000000 per minute"
MEMORY_CHECKPOINTS = (10_000, 100_000)
MEMORY_GROWTH_LIMIT = 0.10
# Server connections PgBouncer keeps per database with --pooler (fewer than the workers
# of two default instances: the point of a pooler).
POOLER_POOL_SIZE = 8
# Compared with --compare-scales: the baseline first, in BENCH_DATABASE_URL's database.
COMPARED_SCALES = ("default", "large")


@dataclass
class Scenario:
    """A named workload: per-thread request lists built from the data set.

    ``reference`` names the app it is measured against in turns (``bare`` or
    ``lean``), and ``target`` the ratio to it that the service should reach;
    scenarios without one are reported against the bare ``/livez``. ``service``
    names the server that answers it (``service``, or ``jwt`` for the
    ``AUTH_MODE=jwt`` one).
    """

    name: str
    label: str
    build: object  # (data_set, thread_index, threads, rng) -> list of (method, path, body)
    reference: str | None = None
    target: float | None = None
    service: str = "service"
    requests_per_thread: int = REQUESTS_PER_THREAD
    result: dict = field(default_factory=dict)


def _get(path):
    return ("GET", path, "")


def livez(_data, _thread, _threads, _rng):
    """The ceiling: a route that does nothing but answer."""
    return [_get("/livez")]


def single_student(data, _thread, _threads, rng):
    """One student with their nested courses, random ids."""
    return [_get(f"/students/{rng.randint(1, data.students)}") for _ in range(REQUESTS_PER_THREAD)]


def student_courses(data, _thread, _threads, rng):
    """One student's course list, random ids."""
    return [
        _get(f"/students/{rng.randint(1, data.students)}/courses")
        for _ in range(REQUESTS_PER_THREAD)
    ]


def student_list(data, _thread, _threads, rng):
    """Pages of 100 students with their courses, at random depths, after a cursor (by id)."""
    return [
        _get(f"/students?page_size=100&after={_after((), rng.randint(1, data.students))}")
        for _ in range(REQUESTS_PER_THREAD)
    ]


def student_list_first_page(_data, _thread, _threads, _rng):
    """The first page of 100 students by number: the count and the page."""
    return [_get("/students?page_size=100&page=1")]


def course_list(data, _thread, _threads, rng):
    """Pages of 100 courses by code, at random depths, after a cursor."""
    requests = []
    for _ in range(REQUESTS_PER_THREAD):
        course = rng.randint(1, data.courses)
        after = _after((SortKey("code"),), dataset.course_code(course), course)
        requests.append(_get(f"/courses?page_size=100&after={after}"))
    return requests


def roster_first_page(_data, _thread, _threads, _rng):
    """The first page (100 per page) of the biggest course's roster, by number."""
    return [_get(f"/courses/{dataset.BIG_COURSE_ID}/students?page_size=100&page=1")]


def roster_last_page(data, _thread, _threads, _rng):
    """The last page (100 per page) of the biggest course's roster, by the cursor of its link."""
    return [
        _get(f"/courses/{dataset.BIG_COURSE_ID}/students?page_size=100&after={data.tail_after}")
    ]


def _after(sort, *values) -> str:
    """The cursor naming the row with these key values (what a next link carries)."""
    return encode_cursor(sort, values)


def roster_tail_cursor(service_url: str, data) -> str:
    """The cursor of the big roster's last page: the next link of the page before it."""
    before_last = max(-(-data.big_course_size // 100) - 1, 1)
    path = f"/courses/{dataset.BIG_COURSE_ID}/students?page_size=100&page={before_last}"
    with urllib.request.urlopen(service_url + path) as response:
        link = response.headers["Link"]
    return re.search(r"after=([^>&]+)>; rel=\"next\"", link).group(1)


def _cycle_pairs(data, thread, threads, rng, count):
    """(student, course) pairs owned by one thread, so threads never race on a pair."""
    per_thread = data.students // threads
    first = thread * per_thread + 1
    pairs = []
    for _ in range(count):
        student = rng.randint(first, first + per_thread - 1)
        course = rng.choice(data.cycle_course_ids)
        pairs.append((student, course))
    return pairs


def _enroll_unenroll(student, course):
    return [
        ("POST", f"/students/{student}/courses", json.dumps({"course_ids": [course]})),
        ("DELETE", f"/students/{student}/courses/{course}", ""),
    ]


def enroll_cycle(data, thread, threads, rng):
    """Enroll a student in a course, then unenroll them (two requests per cycle)."""
    requests = []
    for student, course in _cycle_pairs(data, thread, threads, rng, REQUESTS_PER_THREAD // 2):
        requests += _enroll_unenroll(student, course)
    return requests


def mixed(data, thread, threads, rng):
    """A frontend-like mix: mostly reads, one request in ten an enroll or unenroll."""
    requests = []
    pairs = iter(_cycle_pairs(data, thread, threads, rng, REQUESTS_PER_THREAD))
    while len(requests) < REQUESTS_PER_THREAD:
        pick = rng.random()
        student = rng.randint(1, data.students)
        course = rng.randint(1, data.courses)
        if pick < 0.35:
            requests.append(_get(f"/students/{student}"))
        elif pick < 0.55:
            requests.append(_get(f"/students/{student}/courses"))
        elif pick < 0.65:
            requests.append(_get(f"/students?page={rng.randint(1, data.students // 20)}"))
        elif pick < 0.75:
            requests.append(_get(f"/courses?page={rng.randint(1, data.courses // 20)}"))
        elif pick < 0.80:
            requests.append(_get(f"/courses/{course}"))
        elif pick < 0.90:
            requests.append(_get(f"/courses/{course}/students"))
        else:
            requests += _enroll_unenroll(*next(pairs))
    return requests


SCENARIOS = [
    Scenario("livez", "GET /livez", livez, reference="bare", target=0.8),
    Scenario("student", "GET /students/{id}", single_student, reference="lean", target=0.75),
    Scenario(
        "student_courses",
        "GET /students/{id}/courses",
        student_courses,
        reference="lean",
        target=0.75,
    ),
    Scenario(
        "student_list",
        "GET /students?page_size=100&after=…",
        student_list,
        reference="lean",
        target=0.6,
    ),
    Scenario(
        "student_list_first",
        "GET /students?page_size=100&page=1",
        student_list_first_page,
        reference="lean",
    ),
    Scenario(
        "student_jwt",
        "GET /students/{id} (jwt)",
        single_student,
        reference="lean",
        target=0.75,
        service="jwt",
    ),
    Scenario(
        "student_courses_jwt",
        "GET /students/{id}/courses (jwt)",
        student_courses,
        reference="lean",
        target=0.75,
        service="jwt",
    ),
    Scenario("course_list", "GET /courses?page_size=100&after=…", course_list),
    Scenario("roster_first_page", "GET /courses/{big}/students page 1", roster_first_page),
    Scenario("roster_last_page", "GET /courses/{big}/students last page", roster_last_page),
    Scenario("enroll_cycle", "POST + DELETE enrollment", enroll_cycle),
    Scenario("mixed", "mixed frontend workload", mixed),
]
# Measured after the others, each in its own way (``measure_memory``, ``registration.run``).
MEMORY_SCENARIO = "memory"
MORNING_SCENARIO = "registration"


# --- the servers ----------------------------------------------------------------


def rate_limit_env(choice: str) -> dict[str, str]:
    """The rate-limit settings of ``--rate-limits``: off, per-worker memory, or Redis."""
    if choice == "off":
        return {"RATELIMIT_ENABLED": "false"}
    env = {
        "RATELIMIT_ENABLED": "true",
        "RATELIMIT_GLOBAL": BENCH_RATE_LIMIT,
        "RATELIMIT_WRITES": BENCH_RATE_LIMIT,
    }
    if choice == "redis":
        env["RATELIMIT_STORAGE_URI"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
        env["RATELIMIT_KEY_PREFIX"] = f"bench-{os.getpid()}"
    return env


def service_env(args, extra: dict | None = None) -> dict[str, str]:
    """The service's production environment (and the references'), with the command line's.

    Every production feature is on (JSON request logs with request ids, metrics,
    security headers); rate limits as ``--rate-limits`` says.
    """
    env = {
        "APP_ENV": "production",
        "AUTH_MODE": "none",
        "SECRET_KEY": "bench-only-secret",
        **rate_limit_env(args.rate_limits),
        **(extra or {}),
    }
    if args.worker_class:
        env["GUNICORN_WORKER_CLASS"] = args.worker_class
    if args.threads:
        env["GUNICORN_THREADS"] = str(args.threads)
    return env


@dataclass
class Served:
    """One scale's data set and the gunicorns serving it, by role.

    ``servers`` maps ``service`` (and ``jwt``) to the instances of the service,
    ``bare`` and ``lean`` to their reference apps. The services reach the
    database at ``service_url`` (through PgBouncer with ``--pooler``); the
    references and the checks at ``database_url``.
    """

    data: dataset.DataSet
    database_url: str
    service_url: str
    servers: dict[str, list[GunicornServer]] = field(default_factory=dict)

    def start(self, args, app: str, log_dir: Path, port=None, auth=None) -> GunicornServer:
        """Gunicorn serving ``app`` with gunicorn.conf.py and the command line's overrides.

        ``auth`` adds the AUTH_MODE=jwt settings. With ``--pooler`` the service
        (not a reference app) reaches the database through PgBouncer, with
        ``DATABASE_POOLER=pgbouncer``.
        """
        service = app == SERVICE_APP
        extra = dict(auth or {})
        if service and args.pooler:
            extra["DATABASE_POOLER"] = "pgbouncer"
        return GunicornServer(
            log_dir,
            database_url=self.service_url if service else self.database_url,
            port=port,
            workers=args.workers,
            env=service_env(args, extra),
            command=(*SERVE, app),
        ).start()

    def stop(self, keep: str | None = None) -> None:
        """Stop every gunicorn (all but the ``keep`` role's)."""
        for role, group in self.servers.items():
            if role != keep:
                for server in group:
                    server.stop()


class JwtCaller:
    """An identity provider serving its JWKS over HTTP, and an admin's token signed by it."""

    def __init__(self):
        from tests.support.identity_provider import IdentityProvider

        self.provider = IdentityProvider()
        self.token = self.provider.token("bench-admin", ["admin"], lifetime=24 * 3600)

    def settings(self) -> dict[str, str]:
        """The service's AUTH_MODE=jwt environment."""
        return self.provider.settings()

    def headers(self) -> dict[str, str]:
        """What every request carries."""
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        """Take the JWKS server down."""
        self.provider.stop()


def load_and_serve(
    args, scale_name: str, target, work_dir: Path, scenarios, bouncer, jwt, first_port=None
):
    """Load one scale (unless skipped) and start the gunicorns its scenarios need: a Served.

    The service's instances listen from ``first_port`` on (free ports when None).
    """
    database_url = target.prepare(work_dir)
    scale = dataset.SCALES[scale_name]
    started = time.monotonic()
    if args.skip_load:
        data = dataset.describe(scale)
    else:
        print(f"Loading {scale_name} data set into {target.backend} ...", flush=True)
        data = dataset.load(database_url, scale)
        print(f"  loaded in {time.monotonic() - started:.1f} s", flush=True)
    service_url = bouncer.url_for(database_url) if bouncer else database_url
    served = Served(data, database_url, service_url)
    ports = [first_port + index if first_port else None for index in range(args.instances)]
    served.servers["service"] = [served.start(args, SERVICE_APP, work_dir, port) for port in ports]
    for name in sorted({s.reference for s in scenarios if s.reference}):
        served.servers[name] = [
            served.start(args, REFERENCE_APPS[name], work_dir) for _ in range(args.instances)
        ]
    if jwt is not None:
        served.servers["jwt"] = [
            served.start(args, SERVICE_APP, work_dir, auth=jwt.settings())
            for _ in range(args.instances)
        ]
    tail_after = roster_tail_cursor(served.servers["service"][0].url, data)
    served.data = replace(data, tail_after=tail_after)
    return served


def effective_settings(server: GunicornServer) -> dict:
    """The effective worker settings (gunicorn.conf.py plus the command line)."""
    printed = subprocess.run(
        [*server.command[:-1], "--print-config", server.command[-1]],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    values = dict(re.findall(r"^(workers|worker_class|threads)\s+= (\S+)$", printed, re.M))
    return {
        "workers": int(values["workers"]),
        "worker_class": values["worker_class"],
        "threads": int(values["threads"]),
    }


# --- running and reporting ----------------------------------------------------


def request_lists(scenario_name: str, build, data, args) -> list:
    """The per-connection request lists of a scenario (the same for the service and references)."""
    threads = args.connections
    rng = random.Random(f"{args.seed}-{scenario_name}")
    return [build(data, thread, threads, rng) for thread in range(threads)]


def run_scenario(scenario, data, servers, args, work_dir: Path, headers=None) -> dict:
    """Warm up, then measure one scenario against every instance of the service at once."""
    lists = request_lists(scenario.name, scenario.build, data, args)
    if args.warmup:
        loadgen.drive(args.tool, servers, scenario.name, lists, work_dir, args.warmup, headers)
    return loadgen.drive(args.tool, servers, scenario.name, lists, work_dir, args.duration, headers)


def run_in_turns(scenario, data, servers, references, args, work_dir: Path, headers=None) -> dict:
    """Measure the service and its reference in alternating turns; the ratio of their rates.

    Each side is warmed up, then measured for ``args.duration`` in all, in
    ``args.rounds`` turns: reference then service, service then reference, and
    so on, so that whatever else the machine does weighs on both alike.
    """
    lists = request_lists(scenario.name, scenario.build, data, args)
    sides = {"service": servers, "reference": references}
    if args.warmup:
        for side, instances in sides.items():
            name = f"{scenario.name}-{side}"
            loadgen.drive(args.tool, instances, name, lists, work_dir, args.warmup, headers)
    turns = {"service": [], "reference": []}
    seconds = max(1, round(args.duration / args.rounds))  # wrk takes whole seconds
    for round_index in range(args.rounds):
        order = ("reference", "service") if round_index % 2 == 0 else ("service", "reference")
        for side in order:
            name = f"{scenario.name}-{side}"
            turns[side].append(
                loadgen.drive(args.tool, sides[side], name, lists, work_dir, seconds, headers)
            )
    row = loadgen.in_turn(turns["service"])
    reference = loadgen.in_turn(turns["reference"])
    row["reference"] = scenario.reference
    row["reference_rps"] = reference["rps"]
    row["reference_p99_ms"] = reference["p99_ms"]
    row["reference_non_2xx"] = reference["requests"] - reference["status_2xx"]
    row["ratio"] = row["rps"] / reference["rps"] if reference["rps"] else 0.0
    row["round_ratios"] = [
        service["rps"] / ref["rps"] if ref["rps"] else 0.0
        for service, ref in zip(turns["service"], turns["reference"], strict=True)
    ]
    row["target"] = scenario.target
    return row


def measure_scenarios(scenarios, served: dict[str, Served], args, work_dir: Path, jwt) -> dict:
    """Every scenario's row at every scale: {scale: {scenario: row}}.

    Each row is measured in turns with its reference, or alone. The scales take
    turns scenario by scenario, so on a busy machine both figures of a
    scenario are measured under the same load.
    """
    rows = {scale: {} for scale in served}
    for scenario in scenarios:
        headers = jwt.headers() if scenario.service == "jwt" else None
        for scale, scale_served in served.items():
            service = scale_served.servers[scenario.service]
            reference = scale_served.servers.get(scenario.reference)
            data = scale_served.data
            if reference:
                row = run_in_turns(scenario, data, service, reference, args, work_dir, headers)
                row["against"] = scenario.reference
            else:
                row = run_scenario(scenario, data, service, args, work_dir, headers)
            row["label"] = scenario.label
            rows[scale][scenario.name] = row
            against = f"  {row['ratio']:.2f} of {scenario.reference}" if reference else ""
            where = f"{scale:8} " if len(served) > 1 else ""
            print(
                f"  {where}{scenario.label:40} {row['rps']:8.0f} req/s  "
                f"p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms{against}",
                flush=True,
            )
    # The rest are weighed against the bare /livez, measured in the same run.
    for scale_rows in rows.values():
        livez_row = scale_rows["livez"]
        bare = livez_row.get("reference_rps") or livez_row["rps"] or 1
        for row in scale_rows.values():
            if "ratio" not in row:
                row.update(against="bare /livez", reference_rps=bare, ratio=row["rps"] / bare)
    return rows


# --- memory -------------------------------------------------------------------


def resident_kib(pid: int) -> int:
    """A process's resident memory (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def measure_memory(served: Served, args, work_dir: Path) -> dict:
    """Each worker's resident memory after 10,000 and after 100,000 requests (mixed workload).

    A fresh service, so the counts start at zero; the load runs in slices of a
    few seconds until the total passes each checkpoint, then every worker's
    VmRSS is read.
    """
    checkpoints = [round(count * args.memory_scale) for count in MEMORY_CHECKPOINTS]
    server = served.start(args, SERVICE_APP, work_dir)
    try:
        lists = request_lists(MEMORY_SCENARIO, mixed, served.data, args)
        requests, runs, readings = 0, [], []
        for checkpoint in checkpoints:
            while requests < checkpoint:
                run = loadgen.drive(
                    args.tool, [server], MEMORY_SCENARIO, lists, work_dir, args.memory_slice
                )
                if not run["requests"]:
                    raise RuntimeError("the memory scenario completed no request")
                requests += run["requests"]
                runs.append(run)
            resident = {pid: resident_kib(pid) for pid in server.worker_pids()}
            readings.append({"requests": requests, "rss_kib": resident})
    finally:
        server.stop()
    first, last = readings
    workers = []
    for pid, before in first["rss_kib"].items():
        after = last["rss_kib"].get(pid)
        workers.append(
            {
                "pid": pid,
                "rss_kib_first": before,
                "rss_kib_last": after,
                "growth": None if after is None else after / before - 1,
            }
        )
    row = loadgen.in_turn(runs)
    row.update(
        label=f"memory: mixed workload, RSS after {first['requests']:,} and "
        f"{last['requests']:,} requests",
        checkpoints=[reading["requests"] for reading in readings],
        workers=workers,
        max_growth=max(
            (worker["growth"] for worker in workers if worker["growth"] is not None), default=None
        ),
        target=MEMORY_GROWTH_LIMIT,
    )
    return row


def machine_info(database_url: str) -> dict:
    """What the figures were measured on."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "database": dataset.server_version(database_url),
        "load_generator": loadgen.version(),
    }
    return info


def verdict(row: dict) -> str:
    """Whether a ratio meets its target, in a word (blank without a target)."""
    if row.get("target") is None:
        return ""
    return "meets" if row["ratio"] >= row["target"] else "BELOW"


def print_table(scenarios: dict) -> None:
    """One scale's results as a plain table on stdout, then the memory readings."""
    header = (
        f"{'scenario':38} {'req/s':>7} {'against':>12} {'ref req/s':>9} {'ratio':>6} "
        f"{'target':>6} {'':5} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7} {'5xx':>4} "
        f"{'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in scenarios.values():
        if "workers" in row:
            continue
        target = f"{row['target']:.2f}" if row.get("target") is not None else ""
        print(
            f"{row['label']:38} {row['rps']:>7.0f} {row['against']:>12} "
            f"{row['reference_rps']:>9.0f} {row['ratio']:>6.2f} {target:>6} {verdict(row):5} "
            f"{row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} "
            f"{row['status_4xx'] + row['status_other']:>7} {row['status_5xx']:>4} "
            f"{row['socket_errors'] + row['timeouts']:>6}"
        )
    memory = scenarios.get(MEMORY_SCENARIO)
    if memory:
        first, last = memory["checkpoints"]
        print(f"\nWorker RSS (MiB) after {first:,} and {last:,} requests ({memory['rps']:.0f}/s):")
        for worker in memory["workers"]:
            after = worker["rss_kib_last"]
            print(
                f"  worker {worker['pid']}: {worker['rss_kib_first'] / 1024:.1f} -> "
                + ("gone" if after is None else f"{after / 1024:.1f} ({worker['growth']:+.1%})")
            )


def print_scale_comparison(by_scale: dict) -> None:
    """Each scenario's latency at the large scale as a multiple of the default scale's."""
    default, large = by_scale["default"]["scenarios"], by_scale["large"]["scenarios"]
    header = (
        f"{'scenario':38} {'req/s default':>13} {'req/s large':>11} {'p50 ms':>15} {'times':>5}"
    )
    print(header)
    print("-" * len(header))
    for name, before in default.items():
        after = large[name]
        ratio = after["p50_ms"] / before["p50_ms"] if before["p50_ms"] else float("nan")
        print(
            f"{before['label']:38} {before['rps']:>13.0f} {after['rps']:>11.0f} "
            f"{before['p50_ms']:>6.1f} → {after['p50_ms']:>6.1f} {ratio:>5.2f}"
        )


def missed_targets(scenarios: dict) -> list[str]:
    """The ratios below their targets, and memory that grew past its limit."""
    missed = []
    for row in scenarios.values():
        if "workers" in row:
            if row["max_growth"] is None or row["max_growth"] > MEMORY_GROWTH_LIMIT:
                missed.append(f"{row['label']}: a worker grew by more than 10 % (or was replaced)")
        elif verdict(row) == "BELOW":
            ratio = f"{row['ratio']:.2f} of {row['against']}"
            missed.append(f"{row['label']}: {ratio} < {row['target']}")
    return missed


def failures(scenarios: dict) -> list[str]:
    """Why the run fails: any 5xx, any socket error or timeout, any p99 over 2 s."""
    problems = []
    for row in scenarios.values():
        if row["status_5xx"]:
            problems.append(f"{row['label']}: {row['status_5xx']} responses were 5xx")
        if row["socket_errors"] or row["timeouts"]:
            problems.append(
                f"{row['label']}: {row['socket_errors']} socket errors, {row['timeouts']} timeouts"
            )
        if row["p99_ms"] > P99_LIMIT_MS:
            problems.append(f"{row['label']}: p99 {row['p99_ms']:.0f} ms > {P99_LIMIT_MS:.0f} ms")
        if not row["requests"]:
            problems.append(f"{row['label']}: no request completed")
    return problems


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(dataset.SCALES), default="default")
    parser.add_argument(
        "--compare-scales",
        action="store_true",
        help="serve the default and the large scale side by side and compare them "
        "(overrides --scale)",
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per run")
    parser.add_argument(
        "--rounds", type=int, default=5, help="turns of service and reference in a run"
    )
    parser.add_argument(
        "--memory-scale",
        type=float,
        default=1.0,
        help="multiply the memory scenario's 10,000 and 100,000 requests (a quick check: 0.1)",
    )
    parser.add_argument(
        "--memory-slice", type=float, default=5, help="seconds per load slice (memory scenario)"
    )
    parser.add_argument(
        "--morning-connections", type=int, default=200, help="clients on registration morning"
    )
    parser.add_argument(
        "--check-targets", action="store_true", help="fail when a ratio misses its target"
    )
    parser.add_argument(
        "--rate-limits",
        choices=["off", "memory", "redis"],
        default="off",
        help="rate limits in the service: off (default), per-worker memory, or Redis "
        "(BENCH_REDIS_URL, default redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py)")
    parser.add_argument("--worker-class", help="gunicorn worker class (default: gunicorn.conf.py)")
    parser.add_argument(
        "--threads", type=int, help="threads per worker (default: gunicorn.conf.py)"
    )
    parser.add_argument("--instances", type=int, default=1, help="gunicorns sharing the database")
    parser.add_argument(
        "--port", type=int, help="first port (one per instance; default: free test-range ports)"
    )
    parser.add_argument(
        "--pooler",
        action="store_true",
        help="the services through a private PgBouncer in transaction mode (PostgreSQL)",
    )
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    names = [scenario.name for scenario in SCENARIOS] + [MEMORY_SCENARIO, MORNING_SCENARIO]
    parser.add_argument(
        "--only", help=f"comma-separated scenario names (default: all): {', '.join(names)}"
    )
    parser.add_argument("--skip-load", action="store_true", help="reuse the loaded data set")
    parser.add_argument("--keep-database", action="store_true", help="do not drop it at the end")
    parser.add_argument("--tag", default="", help="suffix for the result file names")
    parser.add_argument("--seed", default="bench")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(names) if args.only else set()
    if unknown:
        parser.error(f"unknown scenario(s) in --only: {', '.join(sorted(unknown))}")
    if args.tool == "auto":
        args.tool = "wrk" if shutil.which("wrk") else "python"
    return args


def result_name(backend: str, scales: list[str], args) -> str:
    """The result files' name: backend, scale(s), instances, pooler, tag."""
    name = f"{backend}-{'-vs-'.join(scales)}"
    if args.instances > 1:
        name += f"-{args.instances}-instances"
    if args.pooler:
        name += "-pgbouncer"
    if args.tag:
        name += f"-{args.tag}"
    return name


def main(argv=None) -> int:
    args = parse_args(argv)
    scales = list(COMPARED_SCALES) if args.compare_scales else [args.scale]
    # The scale the memory and morning scenarios run at, and the chart shows.
    primary = scales[-1]
    url = os.environ.get("BENCH_DATABASE_URL")
    # Compared scales live side by side: the second in a database of its own.
    targets = {
        scale: dataset.Target.from_environment(url, suffix="" if index == 0 else f"_{scale}")
        for index, scale in enumerate(scales)
    }
    backend = targets[scales[0]].backend
    if args.pooler and backend != "postgresql":
        print("--pooler needs BENCH_DATABASE_URL (PostgreSQL)", file=sys.stderr)
        return 2
    wanted = {"livez", *args.only.split(",")} if args.only else None
    scenarios = [s for s in SCENARIOS if wanted is None or s.name in wanted]
    with_memory = wanted is None or MEMORY_SCENARIO in wanted
    with_morning = wanted is None or MORNING_SCENARIO in wanted
    if backend != "postgresql":
        # The lean reference speaks psycopg; SQLite reads are weighed against the bare /livez.
        print("SQLite: no lean reference (PostgreSQL only), reads are compared with bare /livez")
        scenarios = [
            replace(s, reference=None, target=None) if s.reference == "lean" else s
            for s in scenarios
        ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    served: dict[str, Served] = {}
    bouncer = jwt = None
    morning = None
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work_dir = Path(tmp)
        try:
            if args.pooler:
                # One PgBouncer reaches every database of the server, each its own pool.
                bouncer = PgBouncer(url, pool_size=POOLER_POOL_SIZE).start()
            if any(scenario.service == "jwt" for scenario in scenarios):
                jwt = JwtCaller()
            for index, scale in enumerate(scales):
                first_port = args.port + index * args.instances if args.port else None
                served[scale] = load_and_serve(
                    args, scale, targets[scale], work_dir, scenarios, bouncer, jwt, first_port
                )
            settings = effective_settings(served[primary].servers["service"][0])
            machine = machine_info(served[primary].database_url)
            references = [n for n in served[primary].servers if n in REFERENCE_APPS]
            print(
                f"Serving with gunicorn: {args.instances} instance(s) of {settings['workers']} "
                f"{settings['worker_class']} workers x {settings['threads']} threads per scale"
                f"{' through PgBouncer' if bouncer else ''} "
                f"(references: {', '.join(references) or 'none'}); "
                f"load from {args.tool}, {args.connections} connections, "
                f"{args.duration:g} s per scenario and side, in {args.rounds} turns",
                flush=True,
            )
            rows = measure_scenarios(scenarios, served, args, work_dir, jwt)
            # The rest run on the primary scale's service alone.
            for scale, scale_served in served.items():
                scale_served.stop(keep="service" if scale == primary else None)
            if with_memory:
                rows[primary][MEMORY_SCENARIO] = measure_memory(served[primary], args, work_dir)
            if with_morning:
                primary_served = served[primary]
                morning = registration.run(
                    primary_served.servers["service"],
                    primary_served.data,
                    args,
                    work_dir,
                    primary_served.database_url,
                )
                registration.print_figures(morning)
        finally:
            for scale_served in served.values():
                scale_served.stop()
            if jwt is not None:
                jwt.stop()
            if bouncer is not None:
                bouncer.stop()
            if not args.keep_database:
                for target in targets.values():
                    target.cleanup()
    by_scale = {
        scale: {"data": served[scale].data.as_dict(), "scenarios": rows[scale]} for scale in scales
    }
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "backend": backend,
        "scale": primary,
        "server": {
            "instances": args.instances,
            **settings,
            "references": REFERENCE_APPS,
            "rate_limits": args.rate_limits,
            "pooler": f"pgbouncer (transaction mode, {POOLER_POOL_SIZE} server connections)"
            if args.pooler
            else "none",
        },
        "load": {
            "tool": args.tool,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
        },
        "machine": machine,
        **by_scale[primary],
        "registration_morning": morning,
    }
    if args.compare_scales:
        result["by_scale"] = by_scale
    name = result_name(backend, scales, args)
    json_path = RESULTS / f"{name}.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    for scale in scales:
        print(f"\n{scale} scale:" if args.compare_scales else "")
        print_table(rows[scale])
    if args.compare_scales:
        print()
        print_scale_comparison(by_scale)
    try:
        from bench import chart
    except ImportError:
        print("matplotlib is not installed (pip install -r bench/requirements.txt): no chart")
    else:
        png = chart.draw(result, RESULTS / f"{name}.png")
        print(f"\nWrote {json_path.relative_to(ROOT)} and {png.relative_to(ROOT)}")
    where = {scale: f"{scale} scale, " if args.compare_scales else "" for scale in scales}
    problems = [f"{where[scale]}{line}" for scale in scales for line in failures(rows[scale])]
    missed = [f"{where[scale]}{line}" for scale in scales for line in missed_targets(rows[scale])]
    for line in missed:
        print(f"{'FAIL' if args.check_targets else 'below target:'} {line}", file=sys.stderr)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems or (args.check_targets and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
