"""metadata definitions: Glance's metadefs catalogue (namespaces, objects, properties, tags, resource types)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from alembic import op
import sqlalchemy as sa
import openims.db.types


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _times() -> list[sa.Column]:
    return [sa.Column('created_at', openims.db.types.UTCDateTime(), nullable=False),
            sa.Column('updated_at', openims.db.types.UTCDateTime(), nullable=False)]


def _namespace_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(['namespace_id'], ['metadef_namespaces.id'], ondelete='CASCADE')


def upgrade() -> None:
    op.create_table(
        'metadef_namespaces',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('namespace', sa.String(length=80), nullable=False),
        sa.Column('display_name', sa.String(length=80), nullable=True),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('visibility', sa.String(length=32), nullable=False),
        sa.Column('protected', sa.Boolean(), nullable=False),
        sa.Column('owner', sa.String(length=64), nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('namespace'),
    )
    op.create_index('ix_metadef_namespaces_owner', 'metadef_namespaces', ['owner'], unique=False)
    op.create_index('ix_metadef_namespaces_visibility', 'metadef_namespaces', ['visibility'], unique=False)
    op.create_table(
        'metadef_objects',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('namespace_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('required', sa.JSON(), nullable=False),
        sa.Column('properties', sa.JSON(), nullable=False),
        *_times(),
        _namespace_fk(),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('namespace_id', 'name', name='uq_metadef_objects_namespace_name'),
    )
    op.create_table(
        'metadef_properties',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('namespace_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('definition', sa.JSON(), nullable=False),
        *_times(),
        _namespace_fk(),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('namespace_id', 'name', name='uq_metadef_properties_namespace_name'),
    )
    op.create_table(
        'metadef_tags',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('namespace_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        *_times(),
        _namespace_fk(),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('namespace_id', 'name', name='uq_metadef_tags_namespace_name'),
    )
    op.create_table(
        'metadef_resource_types',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('protected', sa.Boolean(), nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'metadef_namespace_resource_types',
        sa.Column('namespace_id', sa.Integer(), nullable=False),
        sa.Column('resource_type_id', sa.Integer(), nullable=False),
        sa.Column('prefix', sa.String(length=80), nullable=True),
        sa.Column('properties_target', sa.String(length=80), nullable=True),
        *_times(),
        _namespace_fk(),
        sa.ForeignKeyConstraint(['resource_type_id'], ['metadef_resource_types.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('namespace_id', 'resource_type_id'),
    )
    op.create_index(op.f('ix_metadef_namespace_resource_types_resource_type_id'),
                    'metadef_namespace_resource_types', ['resource_type_id'], unique=False)
    op.create_table(
        'metadef_seeds',
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('loaded_at', openims.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('metadef_seeds')
    op.drop_index(op.f('ix_metadef_namespace_resource_types_resource_type_id'),
                  table_name='metadef_namespace_resource_types')
    op.drop_table('metadef_namespace_resource_types')
    op.drop_table('metadef_resource_types')
    op.drop_table('metadef_tags')
    op.drop_table('metadef_properties')
    op.drop_table('metadef_objects')
    op.drop_index('ix_metadef_namespaces_visibility', table_name='metadef_namespaces')
    op.drop_index('ix_metadef_namespaces_owner', table_name='metadef_namespaces')
    op.drop_table('metadef_namespaces')
