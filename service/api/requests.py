"""Unlearn requests: file, list, read, cancel."""

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from service.api.deps import DispatcherDep, Officer, Reader, Reviewer, SessionDep, SettingsDep
from service.api.responses import errors
from service.api.routing import GuardedRoute
from service.api.views import request_view
from service.db.enums import RequestStatus
from service.domain.auth import actor_of
from service.domain.requests import (
    RequestFilter,
    approve_request,
    cancel_request,
    get_request,
    list_requests,
    reject_request,
)
from service.domain.submission import Submission, submit_request
from service.schemas.common import UtcBound
from service.schemas.requests import Rejection, RequestCreate, RequestPage, RequestView

router = APIRouter(
    prefix="/unlearn-requests", tags=["unlearn requests"], responses=errors(), route_class=GuardedRoute
)
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", min_length=1, max_length=256,
        description="Retrying with the same key and body returns the same request.",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RequestView,
    responses={200: {"description": "Replay of an earlier submission", "model": RequestView}},
)
async def create(
    body: RequestCreate,
    key: Officer,
    request: Request,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    background: BackgroundTasks,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # One pool thread does the whole transaction, commit included (the 201 follows the commit); the
    # view is built from what was written and serialised once.
    async with request.app.state.db_slots:
        done, view = await run_in_threadpool(_file, request.app.state.sessions, key, body, idempotency_key, settings)
    if done.due_now:  # otherwise the outbox poll sends its job when the batching window closes
        background.add_task(dispatcher.dispatch_pending)
    code = status.HTTP_201_CREATED if done.created else status.HTTP_200_OK
    return Response(view.model_dump_json(), status_code=code, media_type="application/json")


def _file(sessions, key, body: RequestCreate, idempotency_key: str | None, settings) -> tuple[Submission, RequestView]:
    with sessions() as session:
        done = submit_request(session, key=key, body=body, idempotency_key=idempotency_key, settings=settings)
        view = (request_view(done.request, model=done.model, sample_keys=done.sample_keys, job=done.job)
                if done.created else request_view(done.request))
        session.commit()
    return done, view


@router.get("", response_model=RequestPage)
def index(
    _: Reader,
    session: SessionDep,
    status_: Annotated[RequestStatus | None, Query(alias="status")] = None,
    model: Annotated[str | None, Query(max_length=128)] = None,
    due_before: Annotated[
        UtcBound | None,
        Query(description="Only requests due before this instant; a date (2026-07-01) or a time without offset is UTC."),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RequestPage:
    filters = RequestFilter(status=status_, model=model, due_before=due_before)
    rows, next_cursor = list_requests(session, filters=filters, cursor=cursor, limit=limit)
    return RequestPage(items=[request_view(r) for r in rows], next_cursor=next_cursor)


@router.get("/{request_id}", response_model=RequestView)
def show(request_id: uuid.UUID, _: Reader, session: SessionDep) -> RequestView:
    return request_view(get_request(session, request_id=request_id))


@router.post("/{request_id}/cancel", response_model=RequestView)
def cancel(request_id: uuid.UUID, key: Officer, session: SessionDep) -> RequestView:
    cancel_request(session, request_id=request_id, key=key)
    return request_view(get_request(session, request_id=request_id))


@router.post("/{request_id}/approve", response_model=RequestView)
def approve(
    request_id: uuid.UUID,
    key: Reviewer,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    background: BackgroundTasks,
) -> RequestView:
    request = approve_request(session, request_id=request_id, approver=key, settings=settings)
    background.add_task(dispatcher.dispatch_pending)
    return request_view(request)


@router.post("/{request_id}/reject", response_model=RequestView)
def reject(request_id: uuid.UUID, body: Rejection, key: Reviewer, session: SessionDep) -> RequestView:
    return request_view(reject_request(session, request_id=request_id, reason=body.reason, actor=actor_of(key)))
