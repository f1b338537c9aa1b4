"""Load generation: ``wrk`` with ``bench/wrk.lua``, or a small built-in fallback.

Both replay the same per-thread request files and print the same ``WRK_JSON``
line, so the benchmark reads their results the same way. The fallback (run as
``python -m bench.loadgen URL PREFIX THREADS SECONDS [HEADER...]``) keeps one keep-alive
connection per thread; it is slower than wrk and is there so the benchmark
still runs where wrk is not installed.
"""

import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

LUA_SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
MARKER = "WRK_JSON "
TIMEOUT_SECONDS = 5


def write_request_files(prefix: Path, lists: list[list[tuple[str, str, str]]]) -> None:
    """One file per thread: ``METHOD<TAB>PATH<TAB>BODY`` lines."""
    for index, requests in enumerate(lists):
        lines = ("\t".join(request) for request in requests)
        Path(f"{prefix}.{index}").write_text("\n".join(lines) + "\n")


def start(
    tool: str,
    base_url: str,
    prefix: Path,
    threads: int,
    seconds: float,
    headers: dict[str, str] | None = None,
):
    """Start one load run in the background (one connection per thread).

    ``headers`` go on every request (an ``Authorization`` header, for instance).
    """
    sent = [f"{name}: {value}" for name, value in (headers or {}).items()]
    if tool == "wrk":
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{threads}",
            f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
            f"--timeout={TIMEOUT_SECONDS}s",
            *(option for header in sent for option in ("-H", header)),
            "-s",
            str(LUA_SCRIPT),
            base_url,
            "--",
            str(prefix),
        ]
    else:
        command = [sys.executable, "-m", "bench.loadgen", base_url, str(prefix), str(threads)]
        command += [f"{seconds:g}", *sent]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def drive(
    tool: str,
    servers,
    name: str,
    lists: list[list[tuple[str, str, str]]],
    work_dir: Path,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> dict:
    """One load run of ``seconds`` against every server (``.url``, ``.port``) at once.

    With several servers the connections (one per request list) are split
    between them; the figures are :func:`combine`'s.
    """
    runs = []
    for index, server in enumerate(servers):
        own = lists[index :: len(servers)]
        prefix = work_dir / f"{name}-{server.port}"
        write_request_files(prefix, own)
        runs.append(start(tool, server.url, prefix, len(own), seconds, headers))
    return combine([finish(run) for run in runs])


def finish(process) -> dict:
    """Wait for a run and return its figures."""
    stdout, stderr = process.communicate()
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            raw = json.loads(line[len(MARKER) :])
            break
    else:
        raise RuntimeError(f"load generator gave no result:\n{stdout}\n{stderr}")
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "duration_s": seconds,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "status_2xx": raw["status_2xx"],
        "status_4xx": raw["status_4xx"],
        "status_5xx": raw["status_5xx"],
        "status_other": raw["status_other"],
        "socket_errors": raw["socket_errors"],
        "timeouts": raw["timeouts"],
    }


def combine(results: list[dict]) -> dict:
    """Add up runs made at the same time against several instances.

    Counts and throughput add; each latency percentile is the worst instance's.
    """
    if len(results) == 1:
        return dict(results[0])
    combined = {}
    for key in results[0]:
        values = [result[key] for result in results]
        combined[key] = max(values) if key.endswith(("_ms", "_s")) else sum(values)
    return combined


def in_turn(results: list[dict]) -> dict:
    """Add up runs made one after the other against the same server.

    Requests and durations add (throughput is their quotient); each latency
    percentile is the worst run's.
    """
    combined = combine(results)
    combined["duration_s"] = sum(result["duration_s"] for result in results)
    seconds = combined["duration_s"]
    combined["rps"] = combined["requests"] / seconds if seconds else 0.0
    return combined


def version() -> str:
    """Which load generator is installed."""
    if shutil.which("wrk"):
        output = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        return (output.stdout or output.stderr).split("[")[0].strip() or "wrk"
    return "built-in (bench/loadgen.py)"


# --- the built-in fallback ------------------------------------------------------


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _worker(host, port, requests, deadline, latencies, counts, lock, extra_headers):
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
    own_latencies, own = [], {"2xx": 0, "4xx": 0, "5xx": 0, "other": 0, "socket": 0, "timeout": 0}
    index = 0
    while time.monotonic() < deadline:
        method, path, body = requests[index % len(requests)]
        index += 1
        headers = {**extra_headers, **({"Content-Type": "application/json"} if body else {})}
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            response.read()
        except TimeoutError:
            own["timeout"] += 1
            connection.close()
            continue
        except (OSError, http.client.HTTPException):
            own["socket"] += 1
            connection.close()
            continue
        own_latencies.append((time.perf_counter() - started) * 1e6)
        status = response.status
        kind = "5xx" if status >= 500 else "4xx" if status >= 400 else "2xx"
        own[kind if status >= 200 else "other"] += 1
    connection.close()
    with lock:
        latencies.extend(own_latencies)
        for key, value in own.items():
            counts[key] += value


def run(
    base_url: str, prefix: str, threads: int, seconds: float, headers: dict | None = None
) -> dict:
    """Closed-loop load: each thread sends its next request as soon as the last returns."""
    parts = urlsplit(base_url)
    lists = []
    for index in range(threads):
        lines = Path(f"{prefix}.{index}").read_text().splitlines()
        lists.append([tuple(([*line.split("\t"), "", ""])[:3]) for line in lines])
    latencies: list[float] = []
    counts = {"2xx": 0, "4xx": 0, "5xx": 0, "other": 0, "socket": 0, "timeout": 0}
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + seconds
    pool = [
        threading.Thread(
            target=_worker,
            args=(
                parts.hostname,
                parts.port,
                requests,
                deadline,
                latencies,
                counts,
                lock,
                headers or {},
            ),
        )
        for requests in lists
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "p50_us": int(_percentile(latencies, 0.50)),
        "p90_us": int(_percentile(latencies, 0.90)),
        "p99_us": int(_percentile(latencies, 0.99)),
        "max_us": int(latencies[-1]) if latencies else 0,
        "status_2xx": counts["2xx"],
        "status_4xx": counts["4xx"],
        "status_5xx": counts["5xx"],
        "status_other": counts["other"],
        "socket_errors": counts["socket"],
        "timeouts": counts["timeout"],
    }


if __name__ == "__main__":
    url, request_prefix, thread_count, duration, *header_lines = sys.argv[1:]
    sent_headers = dict(line.split(": ", 1) for line in header_lines)
    figures = run(url, request_prefix, int(thread_count), float(duration), sent_headers)
    print(MARKER + json.dumps(figures))
