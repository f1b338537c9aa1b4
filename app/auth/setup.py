"""Binding identity and access to an app.

The caller check itself is the first step of the request pipeline
(:mod:`app.pipeline`), and the spec plugin is one of those the API is created
with (``register_api`` in :mod:`app`); this module gives the app the way of
knowing who calls in its ``AUTH_MODE``.
"""

import logging

from flask import Flask

from app.auth.identity import Identity

logger = logging.getLogger("app.auth")


def register_auth(app: Flask) -> None:
    """Give the app its ``AUTH_MODE``'s way of knowing callers; warn when production is open."""
    app.extensions["identity"] = Identity(app.config)
    if app.config["AUTH_MODE"] == "none" and app.config["APP_ENV"] == "production":
        logger.warning(
            "AUTH_MODE=none: every caller acts as admin; only run this way behind a gateway "
            "that checks every call"
        )
