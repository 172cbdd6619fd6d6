"""users.session_epoch: bumping it revokes every session and remember-me cookie of that user

Revision ID: c3e9f1a7b2d4
Revises: a41c7e2d9b10
Create Date: 2026-12-07 01:50:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = 'c3e9f1a7b2d4'
down_revision = 'a41c7e2d9b10'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('users', 'session_epoch')
