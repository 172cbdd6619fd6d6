"""venue answers (raw, per order), venue findings (what reconciliation found done at the venue) and the
balances reconciliation last agreed with

Revision ID: f121064c2584
Revises: eaad3931ae07
Create Date: 2026-12-07 12:10:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'f121064c2584'
down_revision = 'eaad3931ae07'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'venue_answers',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('order_id', sa.BigInteger(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('http_status', sa.Integer(), nullable=False),
        sa.Column('path', sa.String(length=64), nullable=False),
        sa.Column('digest', sa.String(length=40), nullable=False),
        sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_venue_answers_order_id_orders'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_venue_answers')),
        sa.UniqueConstraint('order_id', 'digest', name=op.f('uq_venue_answers_order_id')),
    )
    op.create_table(
        'venue_findings',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('broker_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('order_id', sa.BigInteger(), nullable=True),
        sa.Column('bot_id', sa.Integer(), nullable=True),
        sa.Column('webhook_id', sa.Integer(), nullable=True),
        sa.Column('replacement_order_id', sa.BigInteger(), nullable=True),
        sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_venue_findings_user_id_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['broker_id'], ['broker_connections.id'],
                                name=op.f('fk_venue_findings_broker_id_broker_connections'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_venue_findings_order_id_orders'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['bot_id'], ['bots.id'], name=op.f('fk_venue_findings_bot_id_bots'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], name=op.f('fk_venue_findings_webhook_id_webhooks'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['replacement_order_id'], ['orders.id'],
                                name=op.f('fk_venue_findings_replacement_order_id_orders'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_venue_findings')),
    )
    op.create_index('ix_venue_findings_user_found', 'venue_findings', ['user_id', 'found_at'], unique=False)
    op.create_index(op.f('ix_venue_findings_bot_id'), 'venue_findings', ['bot_id'], unique=False)
    op.create_index(op.f('ix_venue_findings_webhook_id'), 'venue_findings', ['webhook_id'], unique=False)
    op.create_table(
        'venue_balances',
        sa.Column('broker_id', sa.Integer(), nullable=False),
        sa.Column('asset', sa.String(length=16), nullable=False),
        sa.Column('quantity', sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['broker_id'], ['broker_connections.id'],
                                name=op.f('fk_venue_balances_broker_id_broker_connections'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('broker_id', 'asset', name=op.f('pk_venue_balances')),
    )


def downgrade() -> None:
    op.drop_table('venue_balances')
    op.drop_index(op.f('ix_venue_findings_webhook_id'), table_name='venue_findings')
    op.drop_index(op.f('ix_venue_findings_bot_id'), table_name='venue_findings')
    op.drop_index('ix_venue_findings_user_found', table_name='venue_findings')
    op.drop_table('venue_findings')
    op.drop_table('venue_answers')
