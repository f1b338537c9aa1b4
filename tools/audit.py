"""``make audit``: known vulnerabilities in a locked requirements file, or a plain failure.

pip-audit prints "No known vulnerabilities found" even when it skipped every package
because its vulnerability source did not answer (no network, a registry mirror without
PyPI's JSON API). This asks PyPI's service, then OSV's, and calls the tree clean only when
every package was checked. Exit status: 0 clean, 1 vulnerable, 3 not (fully) checked.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SERVICES = {"pypi": "PyPI", "osv": "OSV"}
EXIT_VULNERABLE = 1
EXIT_UNCHECKED = 3


def ask(service: str, requirement: str, extra: list[str]) -> tuple[dict, dict, str]:
    """Audit with one service: (vulnerable packages, skip reasons by package, failure or "")."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        finished = subprocess.run(  # noqa: S603 - our interpreter, our arguments
            [sys.executable, "-m", "pip_audit", "--requirement", requirement, "--require-hashes",
             "--disable-pip", "--progress-spinner", "off", "--format", "json",
             "--vulnerability-service", service, "--output", str(report), *extra],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if not report.exists() or not report.read_text().strip():
            lines = (finished.stderr or finished.stdout).strip().splitlines()
            return {}, {}, lines[-1] if lines else f"pip-audit exited {finished.returncode}"
        dependencies = json.loads(report.read_text())["dependencies"]
    vulnerable = {
        f"{d['name']} {d['version']}": [v["id"] for v in d["vulns"]]
        for d in dependencies
        if d.get("vulns")
    }
    skipped = {d["name"]: d["skip_reason"] for d in dependencies if "skip_reason" in d}
    return vulnerable, skipped, ""


def main(argv: list[str] | None = None) -> int:
    """Audit the requirement file with each service until every package has been checked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirement", default="requirements.txt")
    parser.add_argument(
        "--allow-unchecked",
        action="store_true",
        help="exit 0 when no source could check the packages (the report still says so)",
    )
    args, extra = parser.parse_known_args(argv)
    unchecked: dict[str, str] | None = None  # None: no service answered at all
    vulnerable: dict[str, list[str]] = {}
    failures = []
    for service, label in SERVICES.items():
        found, skipped, failure = ask(service, args.requirement, extra)
        if failure:
            failures.append(f"{label}: {failure}")
            continue
        vulnerable.update(found)
        # a package counts as checked once any service has checked it
        unchecked = (
            skipped if unchecked is None else {k: unchecked[k] for k in skipped if k in unchecked}
        )
        if not unchecked:
            break
        example = next(iter(unchecked.values()))
        failures.append(f"{label}: {len(unchecked)} packages left unchecked ({example})")
    for package, ids in sorted(vulnerable.items()):
        print(f"VULNERABLE {package}: {', '.join(ids)}")
    if unchecked is None or unchecked:
        if unchecked is None:
            print(
                f"NOT AUDITED: no vulnerability source answered; {args.requirement} is unchecked."
            )
        else:
            print(
                f"NOT AUDITED: no vulnerability source checked {len(unchecked)} of the packages"
                f" in {args.requirement}."
            )
        print("\n".join(f"  {failure}" for failure in failures))
        if vulnerable:
            return EXIT_VULNERABLE
        return 0 if args.allow_unchecked else EXIT_UNCHECKED
    if vulnerable:
        return EXIT_VULNERABLE
    print(f"{args.requirement}: every package checked, no known vulnerabilities.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
