"""checkpoint validation and job phases

Version 1 of a model starts `validating` and becomes `published` or `rejected` once a worker has
loaded it strictly and run one forward pass; `problems` keeps what the worker found (statuses are
plain strings: no constraint to change). A running job reports its phase and its unlearning rate.

Revision ID: 0008_validation_progress
Revises: 0007_faults
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008_validation_progress'
down_revision: str | None = '0007_faults'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PHASES = ('loading', 'building teacher targets', 'unlearning', 'evaluating', 'publishing')


def upgrade() -> None:
    op.add_column('model_versions', sa.Column('problems', sa.JSON(), nullable=False, server_default='[]'))
    op.add_column('jobs', sa.Column('progress_phase', sa.Enum(*PHASES, name='job_phase', native_enum=False, length=32),
                                    nullable=True))
    op.add_column('jobs', sa.Column('progress_rate', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('progress_rate')
        batch.drop_column('progress_phase')
    with op.batch_alter_table('model_versions') as batch:
        batch.drop_column('problems')
