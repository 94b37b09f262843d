"""content line: staff PINs, content-line calls, prompts recorded by phone

Revision ID: 0006_h16_record
Revises: 0006_h16_studio
"""
from alembic import op
import sqlalchemy as sa



revision = '0006_h16_record'
down_revision = '0006_h16_studio'  # chained after the content store (merged from h16-studio)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'staff_pins',
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('pin_hash', sa.String(length=255), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('set_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_staff_pins_staff_id_staff_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('staff_id', name=op.f('pk_staff_pins')),
    )
    op.create_table(
        'content_calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_sid', sa.String(length=64), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('pin_tries', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_content_calls_staff_id_staff_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_content_calls')),
        sa.UniqueConstraint('call_sid', name=op.f('uq_content_calls_call_sid')),
    )
    op.create_table(
        'phone_takes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('content_call_id', sa.Integer(), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('lang', sa.String(length=8), nullable=False),
        sa.Column('prompt_id', sa.String(length=80), nullable=False),
        sa.Column('recording_sid', sa.String(length=64), nullable=False),
        sa.Column('remote_url', sa.String(length=512), nullable=True),
        sa.Column('duration_s', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=True),
        sa.Column('seconds', sa.Float(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['content_call_id'], ['content_calls.id'],
                                name=op.f('fk_phone_takes_content_call_id_content_calls'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_phone_takes_staff_id_staff_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_takes')),
        sa.UniqueConstraint('recording_sid', name=op.f('uq_phone_takes_recording_sid')),
    )
    op.create_index(op.f('ix_phone_takes_content_call_id'), 'phone_takes', ['content_call_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_phone_takes_content_call_id'), table_name='phone_takes')
    op.drop_table('phone_takes')
    op.drop_table('content_calls')
    op.drop_table('staff_pins')
