"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 11:14:33.526361
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('role', sa.Enum('officer', 'reviewer', 'auditor', 'admin', name='api_key_role', native_enum=False, length=32), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_api_keys_secret_hash'))
    )
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('kind', sa.Enum('training', 'proxy', name='dataset_kind', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasets')),
    sa.UniqueConstraint('name', name=op.f('uq_datasets_name'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_name', sa.String(length=128), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    op.create_index(op.f('ix_outbox_sent_at'), 'outbox', ['sent_at'], unique=False)
    op.create_table('models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('family', sa.String(length=64), nullable=False),
    sa.Column('adapter_config', sa.JSON(), nullable=False),
    sa.Column('training_dataset_id', sa.Integer(), nullable=False),
    sa.Column('proxy_dataset_id', sa.Integer(), nullable=True),
    sa.Column('unlearn_defaults', sa.JSON(), nullable=False),
    sa.Column('gate_thresholds', sa.JSON(), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['proxy_dataset_id'], ['datasets.id'], name=op.f('fk_models_proxy_dataset_id_datasets')),
    sa.ForeignKeyConstraint(['training_dataset_id'], ['datasets.id'], name=op.f('fk_models_training_dataset_id_datasets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_models')),
    sa.UniqueConstraint('name', name=op.f('uq_models_name'))
    )
    op.create_table('jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', 'cancelled', name='job_status', native_enum=False, length=32), nullable=False),
    sa.Column('mode', sa.Enum('retain_free', 'with_retain', name='job_mode', native_enum=False, length=32), nullable=False),
    sa.Column('method', sa.Enum('encoder_l2', name='job_method', native_enum=False, length=32), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('base_version', sa.Integer(), nullable=True),
    sa.Column('result_version', sa.Integer(), nullable=True),
    sa.Column('progress_step', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=False),
    sa.Column('losses', sa.JSON(), nullable=False),
    sa.Column('loss_history', sa.JSON(), nullable=False),
    sa.Column('lease_owner', sa.String(length=256), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_jobs_model_id_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_index('ix_jobs_model_status', 'jobs', ['model_id', 'status'], unique=False)
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('parent_version', sa.Integer(), nullable=True),
    sa.Column('checkpoint_digest', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('created_by_job_id', sa.Uuid(), nullable=True),
    sa.Column('absorbed_request_ids', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('published', 'superseded', 'purged', name='version_status', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_job_id'], ['jobs.id'], name=op.f('fk_model_versions_created_by_job_id_jobs')),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_model_versions_model_id_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('created_by_job_id', name=op.f('uq_model_versions_created_by_job_id')),
    sa.UniqueConstraint('model_id', 'version', name=op.f('uq_model_versions_model_id_version'))
    )
    op.create_table('unlearn_requests',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=256), nullable=True),
    sa.Column('idempotency_key', sa.String(length=256), nullable=True),
    sa.Column('body_digest', sa.String(length=64), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.Enum('retain_free', 'with_retain', name='request_mode', native_enum=False, length=32), nullable=False),
    sa.Column('method', sa.Enum('encoder_l2', name='request_method', native_enum=False, length=32), nullable=False),
    sa.Column('classes', sa.JSON(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('received', 'pending_approval', 'queued', 'running', 'completed', 'failed', 'rejected', 'cancelled', name='request_status', native_enum=False, length=32), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('reason_detail', sa.Text(), nullable=True),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('result_version', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_unlearn_requests_api_key_id_api_keys')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_unlearn_requests_job_id_jobs')),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_unlearn_requests_model_id_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unlearn_requests')),
    sa.UniqueConstraint('api_key_id', 'external_id', name=op.f('uq_unlearn_requests_api_key_id_external_id')),
    sa.UniqueConstraint('api_key_id', 'idempotency_key', name=op.f('uq_unlearn_requests_api_key_id_idempotency_key'))
    )
    op.create_index('ix_unlearn_requests_received', 'unlearn_requests', ['received_at', 'id'], unique=False)
    op.create_index('ix_unlearn_requests_status_due', 'unlearn_requests', ['status', 'due_at'], unique=False)
    op.create_table('samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('sample_key', sa.String(length=256), nullable=False),
    sa.Column('class_label', sa.String(length=128), nullable=False),
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('erased_by_version_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_samples_dataset_id_datasets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['erased_by_version_id'], ['model_versions.id'], name=op.f('fk_samples_erased_by_version_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_samples')),
    sa.UniqueConstraint('dataset_id', 'sample_key', name=op.f('uq_samples_dataset_id_sample_key'))
    )
    op.create_index('ix_samples_dataset_class', 'samples', ['dataset_id', 'class_label'], unique=False)
    op.create_table('request_samples',
    sa.Column('request_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('sample_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['unlearn_requests.id'], name=op.f('fk_request_samples_request_id_unlearn_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sample_id'], ['samples.id'], name=op.f('fk_request_samples_sample_id_samples')),
    sa.PrimaryKeyConstraint('request_id', 'position', name=op.f('pk_request_samples')),
    sa.UniqueConstraint('request_id', 'sample_id', name=op.f('uq_request_samples_request_id_sample_id'))
    )



def downgrade() -> None:

    op.drop_table('request_samples')
    op.drop_index('ix_samples_dataset_class', table_name='samples')
    op.drop_table('samples')
    op.drop_index('ix_unlearn_requests_status_due', table_name='unlearn_requests')
    op.drop_index('ix_unlearn_requests_received', table_name='unlearn_requests')
    op.drop_table('unlearn_requests')
    op.drop_table('model_versions')
    op.drop_index('ix_jobs_model_status', table_name='jobs')
    op.drop_table('jobs')
    op.drop_table('models')
    op.drop_index(op.f('ix_outbox_sent_at'), table_name='outbox')
    op.drop_table('outbox')
    op.drop_table('datasets')
    op.drop_table('api_keys')

