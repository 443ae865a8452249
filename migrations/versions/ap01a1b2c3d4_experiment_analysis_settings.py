"""Analysis settings on experiments (SPEC §10.1)

Existing experiments get the fixed-horizon engine, α 0.05, no correction and the lead capture rate as their
primary metric (the server defaults), so their results keep their meaning; new experiments get the §10.1 defaults
from the model (sequential, Holm).

Revision ID: ap01a1b2c3d4
Revises: b4e1f0c2d9a7
Create Date: 2026-12-02 03:10:00
"""
import sqlalchemy as sa
from alembic import op


revision = 'ap01a1b2c3d4'
down_revision = 'b4e1f0c2d9a7'
branch_labels = None
depends_on = None

COLUMNS = (
    ('primary_metric', sa.String(length=80), 'lead_capture_rate'),
    ('engine', sa.String(length=16), 'fixed'),
    ('alpha', sa.Float(), '0.05'),
    ('sequential_tuning', sa.Integer(), '5000'),
    ('prior', sa.String(length=16), 'flat'),
    ('correction', sa.String(length=16), 'none'),
    ('mde', sa.Float(), '0.1'),
    ('power', sa.Float(), '0.8'),
)


def upgrade():
    # Plain ADD COLUMN on both engines: no table rebuild (on SQLite a rebuild of experiments would cascade to
    # its variants and drop AUTOINCREMENT).
    for name, type_, default in COLUMNS:
        op.add_column('experiments', sa.Column(name, type_, nullable=False, server_default=default))
    op.add_column('experiments', sa.Column('baseline_rate', sa.Float(), nullable=True))


def downgrade():
    # SQLite ≥ 3.35 and PostgreSQL drop a column in place.
    for name in ['baseline_rate'] + [name for name, _, _ in reversed(COLUMNS)]:
        op.execute(f'ALTER TABLE experiments DROP COLUMN {name}')
