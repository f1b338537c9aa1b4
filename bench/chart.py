"""The results chart: throughput and its ratio to the reference, and latency percentiles."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(result: dict, path: Path) -> Path:
    """Draw one run's results to ``path`` (PNG) and return it."""
    rows = [row for row in result["scenarios"].values() if "workers" not in row][::-1]
    labels = [row["label"] for row in rows]
    positions = range(len(rows))
    figure, (throughput, latency) = plt.subplots(
        1, 2, figsize=(13, 0.55 * len(rows) + 2), sharey=True
    )
    colours = ["#9e9e9e" if row is rows[-1] else "#1f77b4" for row in rows]
    throughput.barh(positions, [row["rps"] for row in rows], color=colours)
    for position, row in zip(positions, rows, strict=True):
        throughput.annotate(
            f" {row['rps']:,.0f}/s  ({row['ratio']:.2f} of {row['against']})",
            (row["rps"], position),
            va="center",
            fontsize=8,
        )
    throughput.set_yticks(list(positions), labels)
    throughput.set_xlabel("requests per second (higher is better)")
    throughput.set_xlim(0, max(row["rps"] for row in rows) * 1.55)
    height = 0.27
    for offset, key, colour in (
        (-height, "p50_ms", "#2ca02c"),
        (0, "p90_ms", "#ff7f0e"),
        (height, "p99_ms", "#d62728"),
    ):
        latency.barh(
            [p + offset for p in positions],
            [row[key] for row in rows],
            height=height,
            color=colour,
            label=key.split("_")[0],
        )
    latency.set_xscale("log")
    latency.set_xlabel("latency, ms (log scale; lower is better)")
    latency.legend(loc="lower right", fontsize=8)
    server = result["server"]
    figure.suptitle(
        f"{result['backend']}, {result['scale']} scale "
        f"({result['data']['students']:,} students, {result['data']['enrollments']:,} "
        f"enrollments); {server['instances']} x gunicorn {server['workers']} "
        f"{server['worker_class']} workers x {server.get('threads', 1)} threads; "
        f"{result['load']['connections']} connections, "
        f"{result['load']['tool']}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
