"""rate_counters: fixed-window counters of the rate limits, shared by every process (issue 16, item 4)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 13:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rate_counters',
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('window_start', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('window_end', sa.BigInteger(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'key', 'window_start'),
    )
    op.create_index(op.f('ix_rate_counters_window_end'), 'rate_counters', ['window_end'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_rate_counters_window_end'), table_name='rate_counters')
    op.drop_table('rate_counters')
