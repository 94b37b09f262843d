"""case categories locked_in and missing

Revision ID: 0002_h15_detect
Revises: 0002_h12_callbacks
Create Date: 2026-12-01 20:30:00

`cases.category` is stored as a plain VARCHAR(24) (a non-native enum without a CHECK constraint, see
hotline.models._enum), so the two new CaseCategory values need no DDL on SQLite or PostgreSQL. This
revision records when they came in; downgrading maps them back to the nearest older category.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_h15_detect'
down_revision = '0002_h12_callbacks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    cases = sa.table('cases', sa.column('category', sa.String(24)))
    op.execute(cases.update().where(cases.c.category == 'locked_in').values(category='detention'))
    op.execute(cases.update().where(cases.c.category == 'missing').values(category='other'))
