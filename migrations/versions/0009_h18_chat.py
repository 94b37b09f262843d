"""chat channels: channel addresses, event de-duplication, contact links

Revision ID: 0006_h18_chat
Revises: 0006_h17_finish
Create Date: 2026-12-02 01:40:00

A chat contact is a caller whose `phone` is its channel address (`messenger:PSID`, `line:U…`, up to
38 characters), so `callers.phone` and `messages.peer` grow to 64. `channel_events` holds each chat
platform's event id once: (channel, event_id) is unique, so a redelivery is acted on once.
`callers.linked_caller_id` ties a chat contact to the phone number it gave; `oncall_roster.phone`
may hold a lawyer's Telegram address (alerts by roster choice).
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_h18_chat'
down_revision = '0006_h17_finish'  # chained after main's head when main was merged in
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('callers') as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=20), type_=sa.String(length=64))
        batch_op.add_column(sa.Column('linked_caller_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_callers_linked_caller_id_callers'), 'callers',
                                    ['linked_caller_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('messages') as batch_op:
        batch_op.alter_column('peer', existing_type=sa.String(length=20), type_=sa.String(length=64),
                              existing_nullable=True)
    with op.batch_alter_table('oncall_roster') as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=20), type_=sa.String(length=64),
                              existing_nullable=False)
    op.create_table(
        'channel_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('event_id', sa.String(length=96), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_events')),
        sa.UniqueConstraint('channel', 'event_id', name=op.f('uq_channel_events_channel')),
    )
    op.create_index(op.f('ix_channel_events_received_at'), 'channel_events', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_channel_events_received_at'), table_name='channel_events')
    op.drop_table('channel_events')
    with op.batch_alter_table('oncall_roster') as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=64), type_=sa.String(length=20),
                              existing_nullable=False)
    with op.batch_alter_table('messages') as batch_op:
        batch_op.alter_column('peer', existing_type=sa.String(length=64), type_=sa.String(length=20),
                              existing_nullable=True)
    with op.batch_alter_table('callers') as batch_op:
        batch_op.drop_constraint(op.f('fk_callers_linked_caller_id_callers'), type_='foreignkey')
        batch_op.drop_column('linked_caller_id')
        batch_op.alter_column('phone', existing_type=sa.String(length=64), type_=sa.String(length=20))
