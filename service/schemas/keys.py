"""API keys."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from service.db.enums import Role
from service.schemas.common import Strict


class KeyCreate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    role: Role


class KeyView(BaseModel):
    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyView):
    key: str
