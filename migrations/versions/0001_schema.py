"""Tables of the data model (users, user_profiles, vibe_configs, conversations, agent_runs,
deletion_records), portable across SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 09:04:13.634102
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('deletion_records',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_hash', sa.String(length=64), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('row_counts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_deletion_records_subject_hash'), 'deletion_records', ['subject_hash'], unique=False)
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('auth_provider', sa.String(length=16), nullable=False),
    sa.Column('oidc_subject', sa.String(length=255), nullable=True),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('quota_tokens_per_day', sa.Integer(), nullable=True),
    sa.Column('quota_cost_per_month_usd', sa.Numeric(precision=12, scale=4), nullable=True),
    sa.CheckConstraint("auth_provider in ('local', 'oidc')", name='ck_users_auth_provider'),
    sa.CheckConstraint('email = lower(email)', name='ck_users_email_lower'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_users_email'), 'users', ['email'], unique=True)
    op.create_table('conversations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('agent', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_conversations_user_id_created_at', 'conversations', ['user_id', 'created_at'], unique=False)
    op.create_table('user_profiles',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=80), nullable=False),
    sa.Column('stack', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('vertical', sa.String(length=80), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('vibe_configs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('playfulness', sa.Integer(), nullable=False),
    sa.Column('revenue_focus', sa.Integer(), nullable=False),
    sa.Column('technical_depth', sa.Integer(), nullable=False),
    sa.Column('brevity', sa.Integer(), nullable=False),
    sa.Column('formality', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('brevity between 0 and 10', name='ck_vibe_configs_brevity'),
    sa.CheckConstraint('formality between 0 and 10', name='ck_vibe_configs_formality'),
    sa.CheckConstraint('playfulness between 0 and 10', name='ck_vibe_configs_playfulness'),
    sa.CheckConstraint('revenue_focus between 0 and 10', name='ck_vibe_configs_revenue_focus'),
    sa.CheckConstraint('technical_depth between 0 and 10', name='ck_vibe_configs_technical_depth'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'name', name='uq_vibe_configs_user_name')
    )
    op.create_index(op.f('ix_vibe_configs_user_id'), 'vibe_configs', ['user_id'], unique=False)
    op.create_index('uq_vibe_configs_one_active', 'vibe_configs', ['user_id'], unique=True, sqlite_where=sa.text('is_active'), postgresql_where=sa.text('is_active'))
    op.create_table('agent_runs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('conversation_id', sa.Uuid(), nullable=False),
    sa.Column('agent', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_message', sa.Text(), nullable=False),
    sa.Column('output', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('model', sa.String(length=128), nullable=True),
    sa.Column('fallback_from', sa.String(length=128), nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=True),
    sa.Column('output_tokens', sa.Integer(), nullable=True),
    sa.Column('cached_input_tokens', sa.Integer(), nullable=True),
    sa.Column('cache_write_tokens', sa.Integer(), nullable=True),
    sa.Column('cost_usd', sa.Numeric(precision=14, scale=8), nullable=True),
    sa.Column('ttft_ms', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('prompt_sha256', sa.String(length=64), nullable=True),
    sa.Column('atom_versions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('error_code', sa.String(length=32), nullable=True),
    sa.CheckConstraint("status in ('pending', 'ok', 'error', 'interrupted')", name='ck_agent_runs_status'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_agent_runs_conversation_id_created_at', 'agent_runs', ['conversation_id', 'created_at'], unique=False)
    op.create_index('ix_agent_runs_user_id_created_at', 'agent_runs', ['user_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_agent_runs_user_id_created_at', table_name='agent_runs')
    op.drop_index('ix_agent_runs_conversation_id_created_at', table_name='agent_runs')
    op.drop_table('agent_runs')
    op.drop_index('uq_vibe_configs_one_active', table_name='vibe_configs', sqlite_where=sa.text('is_active'), postgresql_where=sa.text('is_active'))
    op.drop_index(op.f('ix_vibe_configs_user_id'), table_name='vibe_configs')
    op.drop_table('vibe_configs')
    op.drop_table('user_profiles')
    op.drop_index('ix_conversations_user_id_created_at', table_name='conversations')
    op.drop_table('conversations')
    op.drop_index(op.f('ix_users_email'), table_name='users')
    op.drop_table('users')
    op.drop_index(op.f('ix_deletion_records_subject_hash'), table_name='deletion_records')
    op.drop_table('deletion_records')
