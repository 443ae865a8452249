"""Drop the two message indexes no query uses (every runtime message paid for them on write)

Messages are read only by (conversation_id, client_message_id), the unique key's index; results read the
conversations' counters. ix_messages_conversation_role and ix_messages_variant_id only cost writes.

Revision ID: b4e1f0c2d9a7
Revises: 8c2642baf880
Create Date: 2026-11-26 11:40:00
"""
from alembic import op


revision = 'b4e1f0c2d9a7'
down_revision = '8c2642baf880'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_variant_id')
        batch_op.drop_index('ix_messages_conversation_role')


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_conversation_role', ['conversation_id', 'role'], unique=False)
        batch_op.create_index('ix_messages_variant_id', ['variant_id'], unique=False)
