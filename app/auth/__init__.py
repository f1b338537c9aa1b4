"""Identity and access: who is calling, and what each caller may do.

- :mod:`app.auth.caller`: the :class:`Caller` of a request and :func:`current_caller`,
  the API other modules use (name, role, student id, ``is_admin_or_registrar``...);
- :mod:`app.auth.identity`: ``AUTH_MODE`` (``jwt``, ``tokens``, ``none``) turning
  credentials into a caller;
- :mod:`app.auth.jwks`: JWT checks against the identity provider's JWKS (PyJWT);
- :mod:`app.auth.policy`: the access rule of each operation and the check that applies it;
- :mod:`app.auth.openapi`: the security the OpenAPI document declares, per mode;
- :mod:`app.auth.setup`: ``register_auth``, binding all of it to an app.
"""

from app.auth.caller import Caller, current_caller

__all__ = ["Caller", "current_caller"]
