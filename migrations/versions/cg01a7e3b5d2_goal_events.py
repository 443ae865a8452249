"""goal events (SPEC §13): what the runtime reports as a visitor's goal, stamped like leads

Revision ID: cg01a7e3b5d2
Revises: ta01c5e8a3d1
Create Date: 2026-12-02 03:10:00

"""
from alembic import op
import sqlalchemy as sa



revision = 'cg01a7e3b5d2'
down_revision = 'ta01c5e8a3d1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'goal_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('visitor_id', sa.String(length=200), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('occurred_at', sa.DateTime(), nullable=False),
        sa.Column('experiment_id', sa.Integer(), nullable=True),
        sa.Column('variant_id', sa.Integer(), nullable=True),
        sa.Column('variant_key', sa.String(length=64), nullable=True),
        sa.Column('event_id', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_goal_events_agent_id_agents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                                name=op.f('fk_goal_events_conversation_id_conversations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_goal_events')),
        sa.UniqueConstraint('conversation_id', 'event_id', name=op.f('uq_goal_events_conversation_id_event_id')),
    )
    op.create_index('ix_goal_events_experiment_name', 'goal_events',
                    ['experiment_id', 'name', 'variant_id', 'visitor_id'], unique=False)
    op.create_index('ix_goal_events_agent_occurred', 'goal_events', ['agent_id', 'occurred_at'], unique=False)


def downgrade():
    op.drop_index('ix_goal_events_agent_occurred', table_name='goal_events')
    op.drop_index('ix_goal_events_experiment_name', table_name='goal_events')
    op.drop_table('goal_events')
