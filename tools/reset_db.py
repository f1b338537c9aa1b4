"""``make reset-db``: throw the development database away and migrate a new, empty one.

Only a SQLite database outside production, unless ``--force`` (``make reset-db FORCE=1``):
anywhere else the data is probably not yours to lose. A SQLite file is deleted and
recreated; a forced reset of another database downgrades it to nothing, then upgrades it.
"""

import argparse
import sys
from pathlib import Path

import flask_migrate

from config import load_dotenv_file

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def main(argv: list[str] | None = None) -> int:
    """Reset the configured database (environment and ``.env``), or refuse and change nothing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="also reset production or non-SQLite")
    args = parser.parse_args(argv)
    load_dotenv_file()
    from app import create_app  # after .env: the app reads the environment it leaves
    from app.extensions import db

    app = create_app()
    with app.app_context():
        url = db.engine.url
        shown = url.render_as_string(hide_password=True)
        is_sqlite = url.get_backend_name() == "sqlite"
        if not args.force and (not is_sqlite or app.config["APP_ENV"] == "production"):
            print(
                f"refusing to reset {shown} (APP_ENV={app.config['APP_ENV']}): only a SQLite"
                " database outside production is reset without FORCE=1",
                file=sys.stderr,
            )
            return 2
        db.engine.dispose()
        if is_sqlite and url.database not in (None, "", ":memory:"):
            for suffix in ("", *SQLITE_SIDE_FILES):
                Path(url.database + suffix).unlink(missing_ok=True)
        else:
            flask_migrate.downgrade(revision="base")
        flask_migrate.upgrade()
        db.engine.dispose()
    print(f"reset {shown}: empty, at the newest migration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
