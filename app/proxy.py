"""The client's address and scheme as seen by the trusted reverse proxies in front.

nginx (``deploy/nginx.conf``) appends the client's address to
``X-Forwarded-For`` and sets ``X-Forwarded-Proto``. The app believes these
headers only for the number of proxies set in ``TRUSTED_PROXIES`` (default 0:
none, the socket's peer is the client), so a client cannot choose the address
that rate limits and logs see by sending the headers itself.
"""

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def register_proxy(app: Flask) -> None:
    """Trust ``X-Forwarded-For``/``-Proto`` from ``TRUSTED_PROXIES`` proxies, no more."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
