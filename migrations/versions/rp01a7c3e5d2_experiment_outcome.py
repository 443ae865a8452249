"""The outcome of an ended experiment (SPEC §10.6): result, variant key, note, when recorded

Existing experiments have none recorded (all null).

Revision ID: rp01a7c3e5d2
Revises: lg01a7c3e5f2
Create Date: 2026-12-02 03:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'rp01a7c3e5d2'
down_revision = 'lg01a7c3e5f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome_result', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('outcome_variant_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('outcome_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('outcome_recorded_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_column('outcome_recorded_at')
        batch_op.drop_column('outcome_note')
        batch_op.drop_column('outcome_variant_key')
        batch_op.drop_column('outcome_result')
