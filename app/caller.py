"""The caller of the current request, as the service layer sees it: a name and a role.

This is where identity and access plug in: :func:`current_actor` is the one
place the views learn who calls. Without authentication every caller is
``anonymous`` acting as ``admin``, which is what ``AUTH_MODE=none`` means.
"""

from app.services.actors import Actor, NamedActor

UNAUTHENTICATED = NamedActor(name="anonymous", role="admin")


def current_actor() -> Actor:
    """The caller of the current request."""
    return UNAUTHENTICATED
