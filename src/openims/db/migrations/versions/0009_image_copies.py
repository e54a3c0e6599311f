"""image_copies: an image's data in further stores (several image stores, copy-image)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:00:00
"""

from alembic import op
import sqlalchemy as sa
import openims.db.types


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'image_copies',
        sa.Column('image_id', sa.String(length=36), nullable=False),
        sa.Column('store_id', sa.String(length=64), nullable=False),
        sa.Column('location', sa.String(length=255), nullable=False),
        sa.Column('created_at', openims.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('image_id', 'store_id'),
    )


def downgrade() -> None:
    op.drop_table('image_copies')
