"""Signed audit reports: one per job, stored as canonical JSON with its digest and signature."""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit.attestation import statements
from service.audit.canonical import digest
from service.audit.chain import record
from service.audit.dsse import sign_statement
from service.audit.signing import Signer
from service.db.models import AuditReport
from service.domain.requests import get_request
from service.errors import NotFound


def store_report(session: Session, *, job_id: uuid.UUID, body: dict[str, Any], signer: Signer, actor: str) -> AuditReport:
    body_digest = digest(body)
    envelopes = [sign_statement(s, signer) for s in statements(body, report_digest=body_digest)]
    report = AuditReport(job_id=job_id, body=body, digest=body_digest, signature=signer.sign(body), attestations=envelopes)
    session.add(report)
    session.flush()
    record(session, actor=actor, action="report.signed", subject=f"job:{job_id}",
           data={"digest": report.digest, "key_id": signer.key_id, "outcome": body.get("outcome")})
    return report


def report_for_request(session: Session, *, request_id: uuid.UUID) -> AuditReport:
    request = get_request(session, request_id=request_id)
    report = session.scalar(select(AuditReport).where(AuditReport.job_id == request.job_id)) if request.job_id else None
    if report is None:
        raise NotFound(f"no report yet for request {request_id} (status {request.status.value})")
    return report


def attestation_for_job(session: Session, *, job_id: uuid.UUID) -> list[dict[str, Any]]:
    report = session.scalar(select(AuditReport).where(AuditReport.job_id == job_id))
    if report is None:
        raise NotFound(f"no report yet for job {job_id}")
    return report.attestations


def signed_document(report: AuditReport) -> dict[str, Any]:
    return {"body": report.body, "digest": report.digest, "signature": report.signature}
