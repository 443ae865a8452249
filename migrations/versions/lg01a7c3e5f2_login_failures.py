"""Login throttling: a login_failures table; audit rows without a workspace (a failed login)

Revision ID: lg01a7c3e5f2
Revises: cg01a7e3b5d2
Create Date: 2026-12-02 03:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'lg01a7c3e5f2'
down_revision = 'cg01a7e3b5d2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'login_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('key', sa.String(length=254), nullable=False),
        sa.Column('failed_at', sa.DateTime(), nullable=False),
        sa.Column('level', sa.Integer(), nullable=False),
        sa.CheckConstraint("scope IN ('email', 'address')", name=op.f('ck_login_failures_scope')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures')),
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failures_failed_at'), ['failed_at'], unique=False)
        batch_op.create_index('ix_login_failures_scope_key_failed', ['scope', 'key', 'failed_at'], unique=False)
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('workspace_id', existing_type=sa.Integer(), nullable=True)


def downgrade():
    # Rows without a workspace (failed logins) cannot stay once every row needs one.
    op.execute("DELETE FROM audit_events WHERE workspace_id IS NULL")
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('workspace_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_scope_key_failed')
        batch_op.drop_index(batch_op.f('ix_login_failures_failed_at'))
    op.drop_table('login_failures')
