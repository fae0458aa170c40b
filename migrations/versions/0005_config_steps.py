"""config steps: unlearning settings budget their work in optimiser steps

Revision ID: 0005_config_steps
Revises: 0004_evidence
Create Date: 2026-12-03 17:50:00

Data only. Stored settings (models' unlearn_defaults, requests' config, jobs' config) written before
the budget was explicit: ``max_steps`` becomes ``steps``; ``epochs`` (passes over max(forget,
retain) pairs, a step count that depended on the data) is dropped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005_config_steps'
down_revision: str | None = '0004_evidence'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (('models', 'unlearn_defaults', sa.Integer), ('unlearn_requests', 'config', sa.Uuid),
           ('jobs', 'config', sa.Uuid))


def _rewrite(change) -> None:
    bind = op.get_bind()
    for name, column, id_type in COLUMNS:
        table = sa.table(name, sa.column('id', id_type), sa.column(column, sa.JSON))
        for row_id, value in bind.execute(sa.select(table.c.id, table.c[column])).all():
            if isinstance(value, dict) and (new := change(value)) != value:
                bind.execute(table.update().where(table.c.id == row_id).values({column: new}))


def _upgrade(value: dict) -> dict:
    out = {k: v for k, v in value.items() if k not in ('epochs', 'max_steps')}
    if value.get('max_steps') is not None and 'steps' not in value:
        out['steps'] = value['max_steps']
    return out


def _downgrade(value: dict) -> dict:
    out = {k: v for k, v in value.items() if k != 'steps'}
    if 'steps' in value:
        out['max_steps'] = value['steps']
    return out


def upgrade() -> None:
    _rewrite(_upgrade)


def downgrade() -> None:
    _rewrite(_downgrade)
