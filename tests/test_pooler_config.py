"""Start-up rules of DATABASE_POOLER: only a known pooler, and only in front of PostgreSQL."""

import pytest

from config import load_config

POSTGRESQL = {"DATABASE_URL": "postgresql://app@db.internal/enrollment"}


def refusal(environ: dict) -> str:
    with pytest.raises(RuntimeError) as error:
        load_config(environ)
    return str(error.value)


def test_without_the_setting_no_pooler_is_assumed():
    assert load_config(POSTGRESQL)["DATABASE_POOLER"] == "none"
    assert load_config({**POSTGRESQL, "DATABASE_POOLER": ""})["DATABASE_POOLER"] == "none"


@pytest.mark.parametrize("value", ["pgbouncer", "PgBouncer", " pgbouncer "])
def test_pgbouncer_is_accepted_in_front_of_postgresql(value):
    assert load_config({**POSTGRESQL, "DATABASE_POOLER": value})["DATABASE_POOLER"] == "pgbouncer"


@pytest.mark.parametrize("value", ["pgpool", "pgbouncer-session", "yes", "1"])
def test_an_unknown_pooler_refuses_to_start_naming_the_choices(value):
    message = refusal({**POSTGRESQL, "DATABASE_POOLER": value})

    assert "DATABASE_POOLER must be one of none, pgbouncer" in message
    assert repr(value.strip().lower()) in message


def test_pgbouncer_in_front_of_sqlite_refuses_to_start():
    message = refusal({"DATABASE_URL": "sqlite:///x.db", "DATABASE_POOLER": "pgbouncer"})

    assert message == "DATABASE_POOLER=pgbouncer needs a PostgreSQL DATABASE_URL"
