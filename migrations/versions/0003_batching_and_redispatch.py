"""batching and redispatch

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 11:41:02.188809
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('not_before', sa.DateTime(timezone=True), nullable=True))
    op.add_column('jobs', sa.Column('last_dispatched_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('job_id', sa.Uuid(), nullable=True))
        batch.create_foreign_key(op.f('fk_outbox_job_id_jobs'), 'jobs', ['job_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_constraint(op.f('fk_outbox_job_id_jobs'), type_='foreignkey')
        batch.drop_column('job_id')
    op.drop_column('jobs', 'last_dispatched_at')
    op.drop_column('jobs', 'not_before')
