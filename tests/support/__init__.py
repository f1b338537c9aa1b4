"""What the tests and the benchmark share: servers and ports, databases, required tools.

- ``servers``: the port allocator, the HTTP client, the gunicorn launcher.
- ``databases``: database create/drop, migrations, apps, invariants.
- ``pgcluster``: a private PostgreSQL cluster a test may stop.
- ``tools``: a test that needs a tool fails under ``CI=true`` and skips elsewhere.
- ``identity_provider``: a JWKS over real HTTP and tokens signed with its keys.
- ``problems``: problem+json answers checked against the registry, their invalid members.
- ``access_table``: the README's access table as data, expanded cell by cell.
"""
