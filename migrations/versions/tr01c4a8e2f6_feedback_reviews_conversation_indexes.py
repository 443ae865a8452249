"""Visitor feedback and blinded reviews (SPEC §12); indexes for the Conversations tab's filters

Revision ID: tr01c4a8e2f6
Revises: rp01a7c3e5d2
Create Date: 2026-12-02 03:00:00
"""
from alembic import op
import sqlalchemy as sa

import webapp.models


revision = 'tr01c4a8e2f6'
down_revision = 'rp01a7c3e5d2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'feedback',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('visitor_id', sa.String(length=200), nullable=False),
        sa.Column('rating', sa.String(length=8), nullable=False),
        sa.Column('comment', sa.Text(), nullable=False),
        sa.Column('given_at', webapp.models.UTCDateTime(), nullable=False),
        sa.Column('experiment_id', sa.Integer(), nullable=True),
        sa.Column('variant_id', sa.Integer(), nullable=True),
        sa.Column('variant_key', sa.String(length=64), nullable=True),
        sa.CheckConstraint("rating IN ('up', 'down')", name=op.f('ck_feedback_rating')),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_feedback_agent_id_agents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                                name=op.f('fk_feedback_conversation_id_conversations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback')),
        sa.UniqueConstraint('conversation_id', name=op.f('uq_feedback_conversation_id')),
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index('ix_feedback_experiment_variant_visitor', ['experiment_id', 'variant_id', 'visitor_id'],
                              unique=False)

    op.create_table(
        'reviews',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('reviewer_id', sa.Integer(), nullable=False),
        sa.Column('experiment_id', sa.Integer(), nullable=False),
        sa.Column('variant_id', sa.Integer(), nullable=False),
        sa.Column('variant_key', sa.String(length=64), nullable=False),
        sa.Column('rating', sa.String(length=8), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('reviewed_at', webapp.models.UTCDateTime(), nullable=False),
        sa.CheckConstraint("rating IN ('good', 'bad')", name=op.f('ck_reviews_rating')),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                                name=op.f('fk_reviews_conversation_id_conversations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'], name=op.f('fk_reviews_reviewer_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews')),
        sa.UniqueConstraint('conversation_id', 'reviewer_id', name=op.f('uq_reviews_conversation_id_reviewer_id')),
    )
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index('ix_reviews_experiment_variant', ['experiment_id', 'variant_id'], unique=False)
        batch_op.create_index('ix_reviews_reviewer_experiment', ['reviewer_id', 'experiment_id'], unique=False)

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_agent_experiment_started', ['agent_id', 'experiment_id', 'started_at'],
                              unique=False)
        batch_op.create_index('ix_conversations_agent_experiment_variant_started',
                              ['agent_id', 'experiment_id', 'variant_key', 'started_at'], unique=False)


def downgrade():
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_agent_experiment_variant_started')
        batch_op.drop_index('ix_conversations_agent_experiment_started')
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_reviews_reviewer_experiment')
        batch_op.drop_index('ix_reviews_experiment_variant')
    op.drop_table('reviews')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_experiment_variant_visitor')
        batch_op.drop_index(batch_op.f('ix_feedback_agent_id'))
    op.drop_table('feedback')
