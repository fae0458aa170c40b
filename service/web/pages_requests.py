"""Dashboard pages of requests: the list by due date, one request (history, live progress, receipt,
report), filing, the review queue, and the decisions (approve, reject, cancel, extend)."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from service.api.deps import DispatcherDep, SessionDep, SettingsDep, SignerDep
from service.api.views import request_view
from service.audit.render import render_html
from service.cli.progress import duration, progress_of
from service.db.base import utcnow
from service.db.enums import RequestStatus
from service.db.models import AuditEvent, Model, RequestSample, UnlearnRequest
from service.domain.auth import actor_of, require_role
from service.domain.deadlines import DUE_SOON_DAYS, extend_request, urgency
from service.domain.reports import receipt_for_request, report_for_request, signed_document
from service.domain.requests import approve_request, cancel_request, get_request, reject_request
from service.domain.submission import submit_request
from service.errors import NotFound, ServiceError
from service.schemas.common import UtcBound
from service.schemas.requests import RequestCreate
from service.web.routing import (
    AUDITOR, OFFICER, READER, REVIEWER, WebKey, WebRoute, check_csrf, may, redirect, render, secure,
)

router = APIRouter(prefix="/ui", route_class=WebRoute, include_in_schema=False)
LIST_LIMIT = 200
Csrf = Annotated[str | None, Form()]


def _rows(session, requests: list[UnlearnRequest]) -> list[dict[str, Any]]:
    """What a list shows of each request; its samples are counted, not loaded (a request may name 10,000)."""
    counts = dict(session.execute(
        select(RequestSample.request_id, func.count()).where(RequestSample.request_id.in_([r.id for r in requests]))
        .group_by(RequestSample.request_id)
    ).all()) if requests else {}
    now = utcnow()
    return [{
        "id": r.id, "external_id": r.external_id, "model": r.model.name, "classes": r.classes,
        "samples": counts.get(r.id, 0), "status": r.status.value, "received_at": r.received_at, "due_at": r.due_at,
        "extended": r.extended_at is not None, "api_key_id": r.api_key_id,
        "urgency": urgency(due_at=r.due_at, open_=not r.status.is_terminal, now=now),
    } for r in requests]


def _by_due(session, *, status: RequestStatus | None, model: str | None, due_before: datetime | None
            ) -> list[UnlearnRequest]:
    """Requests soonest due first (the API lists newest first, keyset-paginated; a page wants deadlines)."""
    query = select(UnlearnRequest).options(joinedload(UnlearnRequest.model))
    if status is not None:
        query = query.where(UnlearnRequest.status == status)
    if model:
        query = query.join(Model, Model.id == UnlearnRequest.model_id).where(Model.name == model)
    if due_before is not None:
        query = query.where(UnlearnRequest.due_at < due_before)
    return list(session.scalars(query.order_by(UnlearnRequest.due_at, UnlearnRequest.id).limit(LIST_LIMIT)))


@router.get("/requests", response_class=HTMLResponse)
def requests_page(
    request: Request,
    key: WebKey,
    session: SessionDep,
    status: Annotated[str | None, Query()] = None,
    model: Annotated[str | None, Query(max_length=128)] = None,
    due_before: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    require_role(key, READER)
    chosen, bound, problems = _filters(status, due_before)
    rows = _rows(session, _by_due(session, status=chosen, model=model or None, due_before=bound))
    models = list(session.scalars(select(Model.name).order_by(Model.name)))
    return render(request, "requests.html", rows=rows, limit=LIST_LIMIT, problems=problems,
                  statuses=[s.value for s in RequestStatus], models=models, soon_days=DUE_SOON_DAYS,
                  filters={"status": status or "", "model": model or "", "due_before": due_before or ""},
                  can_file=may(key, OFFICER), idempotency_key=uuid.uuid4().hex)


def _filters(status: str | None, due_before: str | None) -> tuple[RequestStatus | None, datetime | None, list[str]]:
    problems, chosen, bound = [], None, None
    if status:
        try:
            chosen = RequestStatus(status)
        except ValueError:
            problems.append(f"unknown status {status!r}")
    if due_before:
        try:
            bound = TypeAdapter(UtcBound).validate_python(due_before)
        except ValidationError:
            problems.append("'due before' must be a date such as 2026-07-01")
    return chosen, bound, problems


@router.post("/requests", response_class=HTMLResponse)
def file_request(
    request: Request,
    key: WebKey,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    background: BackgroundTasks,
    csrf: Csrf = None,
    model: Annotated[str, Form()] = "",
    classes: Annotated[str, Form()] = "",
    samples: Annotated[str, Form()] = "",
    external_id: Annotated[str, Form()] = "",
    idempotency_key: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """A form submitted twice (a double click, a reload) files one request: the form carries its own
    Idempotency-Key."""
    check_csrf(request, csrf)
    require_role(key, OFFICER)
    body: dict[str, Any] = {"model": model.strip(), "classes": _items(classes), "samples": _items(samples)}
    if external_id.strip():
        body["external_id"] = external_id.strip()
    try:
        parsed = RequestCreate.model_validate(body)
        filed = submit_request(session, key=key, body=parsed, settings=settings,
                               idempotency_key=f"ui:{idempotency_key}" if idempotency_key else None).request
    except ValidationError as exc:
        return _refused(request, session, [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()])
    except ServiceError as exc:
        if exc.status_code not in (409, 422):
            raise
        session.rollback()
        return _refused(request, session, _problems(exc.detail))
    session.commit()  # before the dispatcher looks for the new job
    background.add_task(dispatcher.dispatch_pending)
    return redirect(f"/ui/requests/{filed.id}")


def _items(text: str) -> list[str]:
    return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


def _problems(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        items = detail.get("items") or []
        return [detail.get("message", "refused")] + [
            f"{i.get('field', '')} {i.get('value', '')}: {i.get('problem', '')}".strip() for i in items]
    return [str(detail)]


def _refused(request: Request, session, problems: list[str]) -> Response:
    models = list(session.scalars(select(Model.name).order_by(Model.name)))
    return render(request, "requests.html", 422, rows=[], limit=LIST_LIMIT, problems=problems, models=models,
                  statuses=[s.value for s in RequestStatus], soon_days=DUE_SOON_DAYS,
                  filters={"status": "", "model": "", "due_before": ""}, can_file=True, idempotency_key=uuid.uuid4().hex)


def _history(session, request: UnlearnRequest) -> list[AuditEvent]:
    subjects = [f"request:{request.id}"] + ([f"job:{request.job_id}"] if request.job_id else [])
    query = select(AuditEvent).where(or_(*(AuditEvent.subject == s for s in subjects))).order_by(AuditEvent.id)
    return list(session.scalars(query.limit(500)))


def _progress(view) -> dict[str, Any]:
    data = view.model_dump(mode="json")
    progress = progress_of(data)
    losses = (data.get("job") or {}).get("progress", {}).get("losses", {})
    return {"phase": progress.phase, "step": progress.step, "total": progress.total,
            "percent": round(100 * progress.step / progress.total) if progress.total else None,
            "rate": f"{progress.rate:.3g} steps/s" if progress.rate else None,
            "eta": duration(progress.eta_seconds) if progress.eta_seconds is not None else None,
            "losses": {k: f"{v:.4g}" for k, v in losses.items()}, "final": view.status.is_terminal,
            "status": view.status.value}


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, request_id: uuid.UUID, key: WebKey, session: SessionDep, signer: SignerDep) -> Response:
    require_role(key, READER)
    row = get_request(session, request_id=request_id)
    view = request_view(row)
    receipt = None
    try:
        receipt = receipt_for_request(session, request_id=request_id, signer=signer)
    except NotFound:
        pass
    return render(
        request, "request.html", r=view, row=row, history=_history(session, row), progress=_progress(view),
        urgency=urgency(due_at=row.due_at, open_=not row.status.is_terminal, now=utcnow()), receipt=receipt,
        can_report=may(key, AUDITOR) and receipt is not None, can_extend=may(key, OFFICER),
        can_cancel=may(key, OFFICER) and row.status in {RequestStatus.received, RequestStatus.pending_approval,
                                                        RequestStatus.queued, RequestStatus.running},
        can_review=may(key, REVIEWER) and row.status is RequestStatus.pending_approval and row.api_key_id != key.id,
    )


@router.get("/requests/{request_id}/live", response_class=HTMLResponse)
def live_progress(request: Request, request_id: uuid.UUID, key: WebKey, session: SessionDep) -> Response:
    """The progress fragment the request page polls (static/live.js) until the request is finished."""
    require_role(key, READER)
    view = request_view(get_request(session, request_id=request_id))
    return render(request, "_progress.html", r=view, progress=_progress(view))


@router.get("/requests/{request_id}/report", response_class=HTMLResponse)
def report_page(request_id: uuid.UUID, key: WebKey, session: SessionDep) -> Response:
    """The job's report as service.audit.render draws it (a whole page: its own inline style, no script)."""
    require_role(key, AUDITOR)
    document = signed_document(report_for_request(session, request_id=request_id))
    back = (f'<main>\n<p><a href="/ui/requests/{request_id}">Back to the request</a> · '
            f'<a href="/ui/requests/{request_id}/report.json" download>Download the signed report (JSON)</a></p>')
    return secure(HTMLResponse(render_html(document).replace("<main>", back, 1)),
                  csp="default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")


@router.get("/requests/{request_id}/report.json")
def report_json(request_id: uuid.UUID, key: WebKey, session: SessionDep) -> Response:
    require_role(key, AUDITOR)
    document = signed_document(report_for_request(session, request_id=request_id))
    return JSONResponse(document, headers={"Content-Disposition": f'attachment; filename="report-{request_id}.json"',
                                           "X-Report-Digest": document["digest"]})


@router.get("/requests/{request_id}/receipt.json")
def receipt_json(request_id: uuid.UUID, key: WebKey, session: SessionDep, signer: SignerDep) -> Response:
    require_role(key, READER)
    document = receipt_for_request(session, request_id=request_id, signer=signer)
    return JSONResponse(document, headers={"Content-Disposition": f'attachment; filename="receipt-{request_id}.json"'})


@router.post("/requests/{request_id}/approve")
def approve(request: Request, request_id: uuid.UUID, key: WebKey, session: SessionDep, settings: SettingsDep,
            dispatcher: DispatcherDep, background: BackgroundTasks, csrf: Csrf = None) -> Response:
    check_csrf(request, csrf)
    require_role(key, REVIEWER)
    approve_request(session, request_id=request_id, approver=key, settings=settings)
    background.add_task(dispatcher.dispatch_pending)
    return redirect(f"/ui/requests/{request_id}")


@router.post("/requests/{request_id}/reject")
def reject(request: Request, request_id: uuid.UUID, key: WebKey, session: SessionDep, csrf: Csrf = None,
           reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    check_csrf(request, csrf)
    require_role(key, REVIEWER)
    if not reason.strip():
        return render(request, "error.html", 422, title="Not accepted", detail="A rejection needs a reason.")
    reject_request(session, request_id=request_id, reason=reason.strip(), actor=actor_of(key))
    return redirect(f"/ui/requests/{request_id}")


@router.post("/requests/{request_id}/cancel")
def cancel(request: Request, request_id: uuid.UUID, key: WebKey, session: SessionDep, csrf: Csrf = None) -> Response:
    check_csrf(request, csrf)
    require_role(key, OFFICER)
    cancel_request(session, request_id=request_id, key=key)
    return redirect(f"/ui/requests/{request_id}")


@router.post("/requests/{request_id}/extension")
def extension(request: Request, request_id: uuid.UUID, key: WebKey, session: SessionDep, csrf: Csrf = None,
              months: Annotated[int, Form(ge=1, le=2)] = 2,
              reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    check_csrf(request, csrf)
    require_role(key, OFFICER)
    if not reason.strip():
        return render(request, "error.html", 422, title="Not accepted", detail="An extension needs a reason.")
    extend_request(session, request=get_request(session, request_id=request_id, for_update=True),
                   months=months, reason=reason.strip(), key=key)
    return redirect(f"/ui/requests/{request_id}")


@router.get("/review", response_class=HTMLResponse)
def review_queue(request: Request, key: WebKey, session: SessionDep) -> Response:
    require_role(key, REVIEWER)
    rows = _rows(session, _by_due(session, status=RequestStatus.pending_approval, model=None, due_before=None))
    return render(request, "review.html", rows=rows, key_id=key.id)
