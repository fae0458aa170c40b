"""The audit log, its verification, reports, receipts and the public key that verifies them."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from service.api.deps import Auditor, Reader, SessionDep, SettingsDep, SignerDep
from service.api.responses import errors
from service.api.routing import GuardedRoute
from service.audit.logstore import subject_log, verify_tree
from service.audit.model_keys import model_signing_public_pem
from service.audit.render import render_html
from service.db.models import AuditEvent
from service.domain.reports import receipt_for_request, report_for_request, signed_document

router = APIRouter(tags=["audit"], responses=errors(), route_class=GuardedRoute)


class EventView(BaseModel):
    seq: int  # the database id: the order events were written in (paging: `after`)
    index: int | None  # leaf index in the transparency log; null until sealed (about a second)
    at: str
    actor: str
    action: str
    subject: str
    data: dict
    prev_hash: str | None  # only events written before the log became a Merkle tree were hash-chained
    hash: str | None


class EventPage(BaseModel):
    items: list[EventView]
    next_after: int | None


class ChainVerdict(BaseModel):
    ok: bool
    checked: int  # sealed events re-hashed
    first_bad_index: int | None
    first_broken_seq: int | None  # the same, as the event's seq (database id) where the row still exists
    reason: str | None
    size: int  # leaves re-derived
    checkpoints: int  # signed checkpoints whose signature and root matched


@router.get("/audit-events", response_model=EventPage)
def events(
    _: Auditor,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    subject: Annotated[str | None, Query(max_length=256)] = None,
) -> EventPage:
    query = select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id).limit(limit + 1)
    if subject:
        query = query.where(AuditEvent.subject == subject)
    rows = list(session.scalars(query))
    items = [EventView(**{**_fields(e), "at": e.at.isoformat()}) for e in rows[:limit]]
    return EventPage(items=items, next_after=rows[limit - 1].id if len(rows) > limit else None)


@router.get("/audit-events/verify", response_model=ChainVerdict)
def verify(_: Auditor, session: SessionDep, signer: SignerDep) -> ChainVerdict:
    """Re-derive the Merkle tree from every sealed event and check it against every signed checkpoint."""
    check = verify_tree(session, signer.public_key)
    seq = None
    if check.first_bad_index is not None:
        seq = session.scalar(select(AuditEvent.id).where(AuditEvent.leaf_index == check.first_bad_index))
    return ChainVerdict(ok=check.ok, checked=check.checked, first_bad_index=check.first_bad_index, first_broken_seq=seq,
                        reason=check.reason, size=check.size, checkpoints=check.checkpoints)  # fmt: skip


@router.get(
    "/unlearn-requests/{request_id}/report",
    response_model=None,
    responses={200: {"content": {"application/json": {}, "text/html": {}}, "description": "signed report"}},
)
def report(
    request_id: uuid.UUID, _: Auditor, session: SessionDep, format: Literal["json", "html"] = "json"
) -> JSONResponse | HTMLResponse:
    """The full job report: it names every request the job coalesced, so it is for auditors (and admins)."""
    document = signed_document(report_for_request(session, request_id=request_id))
    if format == "html":
        return HTMLResponse(render_html(document))
    return JSONResponse(document, headers={"X-Report-Digest": document["digest"]})


@router.get(
    "/unlearn-requests/{request_id}/receipt",
    response_model=None,
    responses={200: {"content": {"application/json": {}}, "description": "signed receipt of this request alone"}},
)
def receipt(request_id: uuid.UUID, _: Reader, session: SessionDep, signer: SignerDep) -> JSONResponse:
    """This request's samples and classes, its job's verdict and metrics, and the job report's digest, signed;
    beside the signed body, `transparency_log`: the request's audit events with their leaf indexes and, once
    sealed, their inclusion proofs against the latest signed checkpoint (checked offline by `oblivio verify`)."""
    document = receipt_for_request(session, request_id=request_id, signer=signer)
    document["transparency_log"] = subject_log(session, f"request:{request_id}")
    return JSONResponse(document, headers={"X-Receipt-Digest": document["digest"]})


@router.get("/signing-key", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
def signing_key(signer: SignerDep) -> PlainTextResponse:
    """The Ed25519 public key (PEM) that verifies every report; its key id is in the X-Key-Id header."""
    return PlainTextResponse(signer.public_pem(), headers={"X-Key-Id": signer.key_id})


@router.get("/model-signing-key", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
def model_signing_key(settings: SettingsDep) -> PlainTextResponse:
    """The EC public key (PEM) that verifies published checkpoints with `model_signing verify key`."""
    return PlainTextResponse(model_signing_public_pem(settings.model_signing_key_file))


def _fields(event: AuditEvent) -> dict:
    return {"seq": event.id, "index": event.leaf_index,
            **{c: getattr(event, c) for c in ("actor", "action", "subject", "data", "prev_hash", "hash")}}  # fmt: skip
