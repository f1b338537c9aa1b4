"""Load benchmark: bulk-load a data set, serve it under gunicorn, drive it with wrk.

Run from the repository root (``make bench`` does)::

    python -m bench.run                      # SQLite, default scale
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench python -m bench.run
    python -m bench.run --scale large --instances 2
    python -m bench.run --compare-scales     # both scales side by side, ratios in one run
    python -m bench.run --instances 2 --pooler   # through PgBouncer (PostgreSQL only)

``BENCH_DATABASE_URL`` names a scratch PostgreSQL database: it is created when
missing (and then dropped at the end), and its tables are emptied and reloaded.
Without it the data set goes to a temporary SQLite file.

Every scenario is measured against the same gunicorn (started by the test
suite's launcher, on free ports of ``TEST_PORT_MIN``..``TEST_PORT_MAX``), next to
the service's own ceiling (``GET /livez``), and printed as a table, written as
JSON and drawn as a PNG chart in ``bench/results/`` (not committed: the figures
that matter go to ``docs/PERFORMANCE.md``). The exit status is non-zero when any response
is a 5xx, a request fails at the socket level, or a p99 exceeds 2 seconds.

``--pooler`` puts a private PgBouncer in transaction mode (``tests/support/pgbouncer.py``)
between the instances and PostgreSQL, and runs them with ``DATABASE_POOLER=pgbouncer``.
The registration-morning scenario (``bench/registration.py``, ``--only registration``)
runs after the others: enrollments per second into one hot course and into spread-out
courses, checked against the rows.
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
# Server connections PgBouncer keeps per database with --pooler (fewer than the workers
# of two default instances: the point of a pooler).
POOLER_POOL_SIZE = 8
P99_LIMIT_MS = 2000.0
REQUESTS_PER_THREAD = 2000


@dataclass
class Scenario:
    """A named workload: per-thread request lists built from the data set."""

    name: str
    label: str
    build: object  # (data_set, thread_index, threads, rng) -> list of (method, path, body)
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


def roster_last_page(data, _thread, _threads, _rng):
    """The last page (100 per page) of the biggest course's roster, by the cursor of its link."""
    return [
        _get(f"/courses/{dataset.BIG_COURSE_ID}/students?page_size=100&after={data.tail_after}")
    ]


def roster_first_page(_data, _thread, _threads, _rng):
    """The first page (100 per page) of the biggest course's roster, by number."""
    return [_get(f"/courses/{dataset.BIG_COURSE_ID}/students?page_size=100&page=1")]


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
    Scenario("livez", "GET /livez (ceiling)", livez),
    Scenario("student", "GET /students/{id}", single_student),
    Scenario("student_courses", "GET /students/{id}/courses", student_courses),
    Scenario("student_list", "GET /students?page_size=100&after=…", student_list),
    Scenario("student_list_first", "GET /students?page_size=100&page=1", student_list_first_page),
    Scenario("course_list", "GET /courses?page_size=100&after=…", course_list),
    Scenario("roster_first_page", "GET /courses/{big}/students page 1", roster_first_page),
    Scenario("roster_last_page", "GET /courses/{big}/students last page", roster_last_page),
    Scenario("enroll_cycle", "POST + DELETE enrollment", enroll_cycle),
    Scenario("mixed", "mixed frontend workload", mixed),
]


# --- the service under test ----------------------------------------------------


def start_service(
    args, database_url: str, port: int | None, log_dir: Path, pooled: bool = False
) -> GunicornServer:
    """Gunicorn with the production settings (gunicorn.conf.py) and the command line's overrides."""
    # AUTH_MODE=none: the figures measure the service, not the token checks. Every request
    # then comes from one caller, so the per-caller write limit is raised out of the way
    # (the limiter still runs): writes would otherwise measure 429 answers.
    env = {
        "APP_ENV": "production",
        "AUTH_MODE": "none",
        "SECRET_KEY": "bench-only-secret",
        "RATELIMIT_WRITES": "1000000 per minute",
        "RATELIMIT_GLOBAL": "1000000 per minute",
    }
    if pooled:
        env["DATABASE_POOLER"] = "pgbouncer"
    if args.worker_class:
        env["GUNICORN_WORKER_CLASS"] = args.worker_class
    if args.threads:
        env["GUNICORN_THREADS"] = str(args.threads)
    command = (GUNICORN, "-c", "gunicorn.conf.py", "--backlog", "2048", "wsgi:app")
    return GunicornServer(
        log_dir,
        database_url=database_url,
        port=port,
        workers=args.workers,
        env=env,
        command=command,
    ).start()


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


def run_scenario(scenario, data, services, args, work_dir: Path) -> dict:
    """Warm up, then measure one scenario against every service at once."""
    threads = args.connections
    rng = random.Random(f"{args.seed}-{scenario.name}")
    lists = [scenario.build(data, thread, threads, rng) for thread in range(threads)]
    results = []
    for warmup, seconds in ((True, args.warmup), (False, args.duration)):
        if not seconds:
            continue
        runs = []
        for index, service in enumerate(services):
            # With several instances the connections are split between them.
            own = lists[index :: len(services)]
            prefix = work_dir / f"{scenario.name}-{service.port}"
            loadgen.write_request_files(prefix, own)
            runs.append(loadgen.start(args.tool, service.url, prefix, len(own), seconds))
        results = [loadgen.finish(run) for run in runs]
        del warmup  # warm-up results are discarded
    return loadgen.combine(results)


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


def print_table(result: dict) -> None:
    """The results as a plain table on stdout."""
    header = (
        f"{'scenario':42} {'req/s':>8} {'vs ceiling':>10} {'p50 ms':>8} {'p90 ms':>8} "
        f"{'p99 ms':>8} {'non-2xx':>8} {'5xx':>5} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, row in result["scenarios"].items():
        print(
            f"{row['label']:42} {row['rps']:>8.0f} {row['ratio_to_ceiling']:>9.0%} "
            f"{row['p50_ms']:>8.1f} {row['p90_ms']:>8.1f} {row['p99_ms']:>8.1f} "
            f"{row['status_4xx'] + row['status_other']:>8} {row['status_5xx']:>5} "
            f"{row['socket_errors'] + row['timeouts']:>6}"
        )
        del name


def failures(result: dict) -> list[str]:
    """Why the run fails: any 5xx, any socket error or timeout, any p99 over 2 s."""
    problems = []
    for row in result["scenarios"].values():
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
        help="measure the default scale, then the large one, in one run, and compare them",
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per run")
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
        "--pooler", action="store_true", help="through PgBouncer in transaction mode (PostgreSQL)"
    )
    parser.add_argument(
        "--morning-connections", type=int, default=200, help="clients on registration morning"
    )
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--only", help="comma-separated scenario names (default: all)")
    parser.add_argument("--skip-load", action="store_true", help="reuse the loaded data set")
    parser.add_argument("--keep-database", action="store_true", help="do not drop it at the end")
    parser.add_argument("--tag", default="", help="suffix for the result file names")
    parser.add_argument("--seed", default="bench")
    args = parser.parse_args(argv)
    if args.tool == "auto":
        args.tool = "wrk" if shutil.which("wrk") else "python"
    return args


def load_and_serve(args, scale_name, database_url, work_dir, bouncers):
    """Load one scale (unless skipped) and start its gunicorn(s): (data, services).

    With ``--pooler`` the gunicorns reach the database through a private PgBouncer
    (appended to ``bouncers``, for the caller to stop).
    """
    scale = dataset.SCALES[scale_name]
    started = time.monotonic()
    if args.skip_load:
        data = dataset.describe(scale)
    else:
        print(f"Loading {scale_name} data set ...", flush=True)
        data = dataset.load(database_url, scale)
        print(f"  loaded in {time.monotonic() - started:.1f} s", flush=True)
    service_url = database_url
    if args.pooler:
        bouncers.append(PgBouncer(database_url, pool_size=POOLER_POOL_SIZE).start())
        service_url = bouncers[-1].url_for(database_url)
    services = []
    for index in range(args.instances):
        port = args.port + index if args.port else None
        services.append(start_service(args, service_url, port, work_dir, pooled=args.pooler))
    return replace(data, tail_after=roster_tail_cursor(services[0].url, data)), services


def measure(args, scenarios, served: dict, work_dir) -> dict:
    """Every scenario against every scale's service in turn: {scale: {scenario: row}}.

    The scales take turns scenario by scenario, so on a busy machine both
    figures of a scenario are measured under the same load.
    """
    rows = {scale: {} for scale in served}
    for scenario in scenarios:
        for scale, (data, services) in served.items():
            row = run_scenario(scenario, data, services, args, work_dir)
            row["label"] = scenario.label
            rows[scale][scenario.name] = row
            print(
                f"  {scale:8} {scenario.label:42} {row['rps']:8.0f} req/s  "
                f"p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms",
                flush=True,
            )
    for scale_rows in rows.values():
        ceiling_rps = scale_rows["livez"]["rps"] or 1
        for row in scale_rows.values():
            row["ratio_to_ceiling"] = row["rps"] / ceiling_rps
    return rows


def print_scale_comparison(by_scale: dict) -> None:
    """Each scenario's latency at the large scale as a multiple of the default scale's."""
    default, large = by_scale["default"]["scenarios"], by_scale["large"]["scenarios"]
    header = (
        f"{'scenario':42} {'req/s default':>13} {'req/s large':>11} {'p50 ms':>15} {'times':>5}"
    )
    print(header)
    print("-" * len(header))
    for name, row in large.items():
        before, after = default[name], row
        ratio = after["p50_ms"] / before["p50_ms"] if before["p50_ms"] else float("nan")
        print(
            f"{row['label']:42} {before['rps']:>13.0f} {after['rps']:>11.0f} "
            f"{before['p50_ms']:>6.1f} → {after['p50_ms']:>6.1f} {ratio:>5.2f}"
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    scales = ["default", "large"] if args.compare_scales else [args.scale]
    # Compared scales live side by side: the large one in a database of its own.
    url = os.environ.get("BENCH_DATABASE_URL")
    targets = {
        scale: dataset.Target.from_environment(url, suffix="" if index == 0 else f"_{scale}")
        for index, scale in enumerate(scales)
    }
    target = targets[scales[0]]
    if args.pooler and target.backend != "postgresql":
        print("--pooler needs BENCH_DATABASE_URL (PostgreSQL)", file=sys.stderr)
        return 2
    scenarios = SCENARIOS
    morning = True
    if args.only:
        wanted = {"livez", *args.only.split(",")}
        scenarios = [scenario for scenario in SCENARIOS if scenario.name in wanted]
        morning = "registration" in wanted
    RESULTS.mkdir(parents=True, exist_ok=True)
    served = {}
    bouncers = []
    database_urls = {}
    morning_figures = None
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work_dir = Path(tmp)
        try:
            for scale, scale_target in targets.items():
                database_urls[scale] = scale_target.prepare(work_dir)
                served[scale] = load_and_serve(
                    args, scale, database_urls[scale], work_dir, bouncers
                )
            first_service = served[scales[0]][1][0]
            settings = effective_settings(first_service)
            machine = machine_info(target.url)
            print(
                f"Serving with gunicorn: {args.instances} instance(s) of {settings['workers']} "
                f"{settings['worker_class']} workers x {settings['threads']} threads per "
                f"scale; load from {args.tool}, {args.connections} connections, "
                f"{args.duration:g} s per scenario",
                flush=True,
            )
            rows = measure(args, scenarios, served, work_dir)
            if morning:
                data, services = served[scales[0]]
                morning_figures = registration.run(
                    services, data, args, work_dir, database_urls[scales[0]]
                )
                registration.print_figures(morning_figures)
        finally:
            for _data, services in served.values():
                for service in services:
                    service.stop()
            for bouncer in bouncers:
                bouncer.stop()
            if not args.keep_database:
                for scale_target in targets.values():
                    scale_target.cleanup()
    by_scale = {
        scale: {"data": served[scale][0].as_dict(), "scenarios": rows[scale]} for scale in scales
    }
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "backend": target.backend,
        "scale": "+".join(scales),
        "server": {
            "instances": args.instances,
            **settings,
            "ceiling_path": "/livez",
            "pooler": f"pgbouncer (transaction mode, {POOLER_POOL_SIZE} server connections)"
            if args.pooler
            else "none",
        },
        "load": {
            "tool": args.tool,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
        },
        "machine": machine,
        **by_scale[scales[-1]],
        "registration_morning": morning_figures,
    }
    if args.compare_scales:
        result["by_scale"] = by_scale
    name = f"{target.backend}-{'-vs-'.join(scales)}"
    if args.instances > 1:
        name += f"-{args.instances}-instances"
    if args.pooler:
        name += "-pgbouncer"
    if args.tag:
        name += f"-{args.tag}"
    json_path = RESULTS / f"{name}.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print_table(result)
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
    problems = [
        problem
        for scale_result in by_scale.values()
        for problem in failures({"scenarios": scale_result["scenarios"]})
    ]
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
