"""``make contract``: generate the Python client of the API with openapi-python-client.

The client is a package (``enrollment_client``) generated from an OpenAPI
document into a directory that git ignores; ``clients/python/usage.py`` uses it
and ``mypy --strict`` checks that use. tests/test_clients.py calls
:func:`generate` on the spec a live server serves.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi.json"
PACKAGE = "enrollment_client"
OUTPUT = ROOT / "clients" / "python" / PACKAGE
BIN = Path(sys.executable).parent


def generate(spec: Path = SPEC, output: Path = OUTPUT) -> Path:
    """Write the client package for ``spec`` to ``output`` (replacing it); return ``output``."""
    command = [
        str(BIN / "openapi-python-client"),
        "generate",
        f"--path={spec}",
        f"--output-path={output}",
        "--meta=none",  # the package alone, without a pyproject.toml around it
        "--overwrite",
        "--fail-on-warning",
    ]
    # The generator formats its output with the ruff it finds on PATH: the venv's.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(  # noqa: S603 - the venv's generator, our arguments
        command, check=True, env=env, capture_output=True, text=True
    )
    return output


def main(argv: list[str] | None = None) -> int:
    """Generate the client from the committed openapi.json into clients/python/."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    try:
        generate(args.spec, args.output)
    except subprocess.CalledProcessError as error:
        print(error.stdout, error.stderr, sep="\n", file=sys.stderr)
        return error.returncode
    print(f"{args.output}: generated from {args.spec}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
