"""API keys (admin)."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from service.api.deps import Admin, SessionDep
from service.api.responses import errors
from service.api.routing import GuardedRoute
from service.domain.auth import actor_of, create_api_key, list_api_keys, revoke_api_key
from service.schemas.keys import KeyCreate, KeyCreated, KeyView

router = APIRouter(prefix="/api-keys", tags=["api keys"], responses=errors(), route_class=GuardedRoute)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
def create(body: KeyCreate, admin: Admin, session: SessionDep) -> KeyCreated:
    key, token = create_api_key(session, name=body.name, role=body.role, actor=actor_of(admin))
    return KeyCreated(**KeyView.model_validate(key, from_attributes=True).model_dump(), key=token)


@router.get("", response_model=list[KeyView])
def index(_: Admin, session: SessionDep) -> list[KeyView]:
    return [KeyView.model_validate(k, from_attributes=True) for k in list_api_keys(session)]


@router.post("/{key_id}/revoke", response_model=KeyView)
def revoke(key_id: Annotated[int, Path(ge=1, le=2**31 - 1)], admin: Admin, session: SessionDep) -> KeyView:
    return KeyView.model_validate(revoke_api_key(session, key_id=key_id, actor=actor_of(admin)), from_attributes=True)
