"""content studio: content versions (draft, published), their items, and recordings (takes)

Revision ID: 0006_h16_studio
Revises: 0002_h15_detect
Create Date: 2026-12-02 01:26:32.768335
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_h16_studio'
down_revision = '0002_h15_detect'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('content_takes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prompt_id', sa.String(length=120), nullable=False),
    sa.Column('audio_name', sa.String(length=120), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('review', sa.Enum('draft', 'needs_review', 'reviewed', name='contentreview', native_enum=False, length=24), nullable=False),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['staff_users.id'], name=op.f('fk_content_takes_recorded_by_id_staff_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['staff_users.id'], name=op.f('fk_content_takes_reviewed_by_id_staff_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_takes'))
    )
    with op.batch_alter_table('content_takes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_content_takes_prompt_id'), ['prompt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_content_takes_sha256'), ['sha256'], unique=False)

    op.create_table('content_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('draft', 'published', name='contentstatus', native_enum=False, length=24), nullable=False),
    sa.Column('based_on', sa.Integer(), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff_users.id'], name=op.f('fk_content_versions_created_by_id_staff_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['published_by_id'], ['staff_users.id'], name=op.f('fk_content_versions_published_by_id_staff_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_versions')),
    sa.UniqueConstraint('number', name=op.f('uq_content_versions_number'))
    )
    with op.batch_alter_table('content_versions', schema=None) as batch_op:
        batch_op.create_index('uq_content_versions_one_draft', ['status'], unique=True, sqlite_where=sa.text("status = 'draft'"), postgresql_where=sa.text("status = 'draft'"))

    op.create_table('content_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('review', sa.Enum('draft', 'needs_review', 'reviewed', name='contentreview', native_enum=False, length=24), nullable=False),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['staff_users.id'], name=op.f('fk_content_items_reviewed_by_id_staff_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['staff_users.id'], name=op.f('fk_content_items_updated_by_id_staff_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['version_id'], ['content_versions.id'], name=op.f('fk_content_items_version_id_content_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_items')),
    sa.UniqueConstraint('version_id', 'kind', 'key', 'lang', name=op.f('uq_content_items_version_id'))
    )
    with op.batch_alter_table('content_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_content_items_version_id'), ['version_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('content_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_content_items_version_id'))

    op.drop_table('content_items')
    with op.batch_alter_table('content_versions', schema=None) as batch_op:
        batch_op.drop_index('uq_content_versions_one_draft', sqlite_where=sa.text("status = 'draft'"), postgresql_where=sa.text("status = 'draft'"))

    op.drop_table('content_versions')
    with op.batch_alter_table('content_takes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_content_takes_sha256'))
        batch_op.drop_index(batch_op.f('ix_content_takes_prompt_id'))

    op.drop_table('content_takes')
