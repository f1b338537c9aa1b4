"""WSGI entry point: ``gunicorn wsgi:app`` and ``FLASK_APP=wsgi flask ...``."""

from config import load_dotenv_file

# The flask command and gunicorn.conf.py have read .env already, other WSGI servers have not.
# Before the app's imports: prometheus_client reads PROMETHEUS_MULTIPROC_DIR when imported.
load_dotenv_file()

from app import create_app  # noqa: E402

app = create_app()
