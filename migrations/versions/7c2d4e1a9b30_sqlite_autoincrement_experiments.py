"""never reuse experiment and variant ids on SQLite (stamps outlive deleted experiments)

Revision ID: 7c2d4e1a9b30
Revises: 1fff73fba5a5
Create Date: 2026-11-26 08:00:00

SQLite reuses the highest rowid after a delete unless the table is AUTOINCREMENT; a new experiment could
then take a deleted one's id and variant ids, and old conversation stamps would point at it. PostgreSQL
sequences never reuse ids: nothing to do there.
"""
from alembic import op

revision = '7c2d4e1a9b30'
down_revision = '1fff73fba5a5'
branch_labels = None
depends_on = None

TABLES = ("experiments", "variants")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Rebuilding the parent table drops it; with foreign keys on, that would cascade to variants.
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=ON")


def upgrade():
    _rebuild(True)


def downgrade():
    _rebuild(False)
