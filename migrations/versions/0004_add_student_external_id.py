"""Add students.external_id, the identity that ties a login to a student.

Adds a nullable, unique column of up to 64 characters; existing students keep
every value and get NULL (no login is tied to them until an admin or a
registrar sets it).

Downgrading drops the column and with it every student's external_id: the
students stay, but no student token acts as any of them until it is set again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``external_id`` (nullable) with its unique constraint."""
    with op.batch_alter_table("students") as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_students_external_id"), ["external_id"])


def downgrade():
    """Drop ``external_id`` and its constraint: every external id is discarded."""
    with op.batch_alter_table("students") as batch_op:
        batch_op.drop_constraint(op.f("uq_students_external_id"), type_="unique")
        batch_op.drop_column("external_id")
