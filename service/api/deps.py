"""Dependencies that make handlers read like sentences: SessionDep, CurrentKey, role guards."""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from service.audit.signing import Signer
from service.config import Settings
from service.db.enums import Role
from service.domain.auth import Principal, authenticate, cached_principal, require_role
from service.queue import Dispatcher
from service.storage import ArtifactStore


async def db_slot(request: Request) -> AsyncIterator[None]:
    """Admission to the database, awaited on the event loop (no thread is held while waiting).

    A transaction's commit runs in a pool thread after the handler returned. If every pool thread
    were blocked inside other transactions (on a row lock, or on a free connection),
    that commit could never run: bounding the transactions in flight below the thread count makes
    that deadlock impossible and turns overload into queueing.
    """
    async with request.app.state.db_slots:
        yield


def get_session(request: Request, _slot: Annotated[None, Depends(db_slot)]) -> Iterator[Session]:
    """One transaction per HTTP request, committed before the response is sent."""
    with request.app.state.sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> ArtifactStore:
    return request.app.state.store


async def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher


async def get_signer(request: Request) -> Signer:
    return request.app.state.signer


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
SignerDep = Annotated[Signer, Depends(get_signer)]


async def current_key(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="API key (alternative to Authorization)")] = None,
) -> Principal:
    """The verified key: from the process's key cache on the event loop, else looked up in a pool thread.

    The look-up is its own one-statement transaction, outside the database slots: a handler may
    already hold a slot (SessionDep resolved first), and waiting for a second one could deadlock."""
    token = _token(authorization, x_api_key)
    principal = cached_principal(request.app.state.key_cache, token)
    return principal or await run_in_threadpool(_authenticate, request, token)


def _token(authorization: str | None, x_api_key: str | None) -> str | None:
    if authorization:
        scheme, _, value = authorization.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    return x_api_key


async def authorise_before_body(request: Request, allowed: frozenset[Role]) -> None:
    """What the role guard checks, done before FastAPI reads the body (see `GuardedRoute`);
    a cached key is checked on the event loop, without a thread or a database slot."""
    token = _token(request.headers.get("authorization"), request.headers.get("x-api-key"))
    principal = cached_principal(request.app.state.key_cache, token)
    if principal is None:
        async with request.app.state.db_slots:
            principal = await run_in_threadpool(_authenticate, request, token)
    require_role(principal, allowed)


def _authenticate(request: Request, token: str | None) -> Principal:
    with request.app.state.sessions() as session:
        return authenticate(session, token=token, cache=request.app.state.key_cache)


CurrentKey = Annotated[Principal, Depends(current_key)]


def roles(*allowed: Role):
    allowed_set = frozenset(allowed)

    async def guard(key: CurrentKey) -> Principal:
        require_role(key, allowed_set)
        return key

    guard.allowed_roles = allowed_set  # read by GuardedRoute
    return Depends(guard)


Officer = Annotated[Principal, roles(Role.officer)]
Reader = Annotated[Principal, roles(Role.officer, Role.auditor, Role.reviewer)]
Reviewer = Annotated[Principal, roles(Role.reviewer)]
Auditor = Annotated[Principal, roles(Role.auditor)]
Admin = Annotated[Principal, roles(Role.admin)]
AnyRole = Annotated[Principal, roles(*Role)]
