"""one unsent outbox row per job

Revision ID: 0007_faults
Revises: 0006_erasure
Create Date: 2026-12-03 18:00:00

Lease-expiry recovery could queue a second unsent row for a job it had just re-queued; the
partial unique index makes that impossible (extra unsent rows of a job are dropped first).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007_faults'
down_revision: str | None = '0006_erasure'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNSENT = "sent_at IS NULL AND job_id IS NOT NULL"


def upgrade() -> None:
    op.execute(
        f"DELETE FROM outbox WHERE {_UNSENT} AND id NOT IN "
        f"(SELECT MIN(id) FROM outbox WHERE {_UNSENT} GROUP BY job_id)"
    )
    op.create_index('uq_outbox_unsent_job', 'outbox', ['job_id'], unique=True,
                    postgresql_where=sa.text(_UNSENT), sqlite_where=sa.text(_UNSENT))


def downgrade() -> None:
    op.drop_index('uq_outbox_unsent_job', table_name='outbox')
