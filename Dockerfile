# The enrollment service: gunicorn on port 8000, migrations applied at start
# (docker/entrypoint.sh). README "Deploying" lists the environment variables.

# --- build: install the locked dependencies into a virtualenv ---------------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# requirements.txt is the lock (`make lock`): every package pinned and checked by its hash.
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt

# --- runtime: the virtualenv and the code, run as an unprivileged user ------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    FLASK_APP=wsgi \
    HOST=0.0.0.0 \
    PORT=8000
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-log-init --home-dir /app app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# The code stays owned by root (read-only for the service); only instance/
# (the default SQLite location) is writable. .dockerignore lets in only what runs.
COPY . .
RUN mkdir -p instance && chown 10001:10001 instance
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '8000'), timeout=3)"]
CMD ["docker/entrypoint.sh"]
