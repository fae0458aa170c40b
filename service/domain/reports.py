"""Signed audit reports, one per job, stored as canonical JSON with its digest and signature; and
receipts, one per request, rendered from its job's report on demand."""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audit.attestation import statements
from service.audit.canonical import digest
from service.audit.chain import record
from service.audit.dsse import sign_statement
from service.audit.receipt import receipt_body
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


def receipt_for_request(session: Session, *, request_id: uuid.UUID, signer: Signer) -> dict[str, Any]:
    """The request's signed receipt: the same bytes every time (stored rows in, deterministic signature)."""
    request = get_request(session, request_id=request_id)
    report = report_for_request(session, request_id=request_id)
    own = {
        "id": str(request.id), "external_id": request.external_id, "model": request.model.name,
        "mode": request.mode.value, "method": request.method.value, "status": request.status.value,
        "reason": request.reason, "result_version": request.result_version,
        "received_at": request.received_at.isoformat(), "due_at": request.due_at.isoformat(),
        "finished_at": request.finished_at.isoformat() if request.finished_at else None,
    }
    if request.extended_at is not None:  # the deadline's one extension (GDPR Art. 12(3)), with its reason
        own["deadline_extension"] = {
            "original_due_at": request.original_due_at.isoformat(), "extended_at": request.extended_at.isoformat(),
            "reason": request.extension_reason,
        }
    body = receipt_body(request=own, classes=request.classes, report=report.body, report_digest=report.digest)
    return {"body": body, "digest": digest(body), "signature": signer.sign(body)}


def signed_document(report: AuditReport) -> dict[str, Any]:
    return {"body": report.body, "digest": report.digest, "signature": report.signature}
