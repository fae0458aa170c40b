"""Model registry, versions, checkpoint download and promotion."""

import logging
import os
import time
from collections.abc import Iterator
from typing import Annotated, BinaryIO

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.api.deps import Admin, AnyRole, DispatcherDep, SessionDep, SettingsDep, StoreDep
from service.api.responses import errors
from service.api.routing import GuardedRoute
from service.api.views import model_view, version_view
from service.audit.model_keys import SIGNATURE_NAME
from service.db.enums import VersionStatus
from service.domain.auth import actor_of
from service.domain.models import get_model, list_models, register_model
from service.domain.validation import discard_rejected_model, model_status, version_status
from service.domain.versions import downloadable, get_version, list_versions, promote
from service.errors import Damaged, Gone, NotFound, Unprocessable
from service.schemas.registry import ModelSpec, ModelView, VersionView
from service.storage import ArtifactDamaged
from service.storage.local import CHUNK

router = APIRouter(prefix="/models", tags=["models"], responses=errors(), route_class=GuardedRoute)
_POLL_SECONDS = 0.2
log = logging.getLogger("oblivio.api")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ModelView,
    responses={202: {"model": ModelView, "description": "Registered; a worker has not yet checked the checkpoint"}},
)
def create(
    key: Admin,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    response: Response,
    spec: Annotated[str, Form(description='ModelSpec as JSON, e.g. {"name": "fmnist-mae", "training_dataset": "fmnist-train", "proxy_dataset": "fmnist-test"}')],
    checkpoint: Annotated[UploadFile, File(description="Base checkpoint (safetensors with an Oblivio header)")],
    features: Annotated[
        UploadFile | None, File(description="Evaluation feature network (safetensors), e.g. the demo classifier")
    ] = None,
) -> ModelView:
    """Check the files, then wait up to OBLIVIO_REGISTER_WAIT_SECONDS for a worker to load the checkpoint and run it.

    201: validated, version 1 is current. 202: still validating (poll the model). 422: refused here
    or by the worker; a refused model is not kept. The registration commits before the wait: the
    worker checks version 1 in its own transaction.
    """
    try:
        parsed = ModelSpec.model_validate_json(spec)
    except ValidationError as exc:
        items = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Unprocessable({"message": "invalid model spec; nothing was recorded", "items": items}) from exc
    actor = actor_of(key)
    model = register_model(
        session, spec=parsed, checkpoint=checkpoint.file, features=features.file if features else None, store=store,
        actor=actor,
    )
    version_id = list_versions(session, model=model)[0].id
    session.commit()
    dispatcher.dispatch_pending()
    verdict = _await_verdict(session, version_id=version_id, seconds=settings.register_wait_seconds)
    model = get_model(session, name=parsed.name)
    if verdict is VersionStatus.rejected:
        problems = discard_rejected_model(session, model=model, store=store, actor=actor)
        session.commit()
        raise Unprocessable({"message": "model not registered: a worker could not load and run the checkpoint",
                             "items": [{"field": "checkpoint", "problem": p} for p in problems]})
    if verdict is VersionStatus.validating:
        response.status_code = status.HTTP_202_ACCEPTED
    return model_view(model, status=model_status(session, model=model))


def _await_verdict(session: Session, *, version_id: int, seconds: float) -> VersionStatus | None:
    deadline = time.monotonic() + seconds
    while True:
        verdict = version_status(session, version_id=version_id)
        session.rollback()  # end the read: no connection is held while waiting
        if verdict is not VersionStatus.validating or time.monotonic() >= deadline:
            return verdict
        time.sleep(_POLL_SECONDS)


@router.get("", response_model=list[ModelView])
def index(_: AnyRole, session: SessionDep) -> list[ModelView]:
    return [model_view(m, status=model_status(session, model=m)) for m in list_models(session)]


@router.get("/{name}", response_model=ModelView)
def show(name: str, _: AnyRole, session: SessionDep) -> ModelView:
    model = get_model(session, name=name)
    return model_view(model, status=model_status(session, model=model))


@router.get("/{name}/versions", response_model=list[VersionView])
def versions(name: str, _: AnyRole, session: SessionDep) -> list[VersionView]:
    model = get_model(session, name=name)
    return [version_view(v, current=model.current_version) for v in list_versions(session, model=model)]


@router.get(
    "/{name}/versions/{ref}/checkpoint",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "safetensors checkpoint"}, **errors(410)},
)
def download(name: str, ref: str, key: AnyRole, session: SessionDep, store: StoreDep) -> StreamingResponse:
    """A published version for any role; a superseded one (pre-erasure) for admins only; a purged one is 410."""
    model = get_model(session, name=name)
    version = downloadable(session, model=model, ref=ref, key=key)
    try:
        stored = store.open_verified(version.checkpoint_digest)
    except FileNotFoundError:
        raise NotFound(f"checkpoint of version {version.version} is {version.status.value} and no longer stored") from None
    except ArtifactDamaged as exc:
        log.error("checkpoint of %s version %d refused: %s", name, version.version, exc)
        raise Damaged(f"checkpoint of version {version.version} failed its digest check in the artifact store "
                      "and is refused; restore it from a backup") from None
    size = stored.seek(0, os.SEEK_END)
    stored.seek(0)
    return StreamingResponse(
        _chunks(stored),
        media_type="application/octet-stream",
        headers={"X-Checkpoint-Sha256": version.checkpoint_digest, "X-Model-Version": str(version.version),
                 "Content-Length": str(size),
                 "Content-Disposition": f'attachment; filename="{name}-v{version.version}.safetensors"'},
    )


def _chunks(stored: BinaryIO) -> Iterator[bytes]:
    with stored:
        while chunk := stored.read(CHUNK):
            yield chunk


@router.get(
    "/{name}/versions/{ref}/signature",
    responses={200: {"content": {"application/json": {}}, "description": "OpenSSF model-signing bundle"}, **errors(410)},
)
def signature(name: str, ref: str, _: AnyRole, session: SessionDep, store: StoreDep) -> Response:
    """The checkpoint's model-signing bundle: `model_signing verify key --signature … --public_key …`."""
    version = get_version(session, model=get_model(session, name=name), ref=ref)
    if version.status is VersionStatus.purged:
        raise Gone(f"version {version.version} was purged")
    bundle = store.get_derived(version.checkpoint_digest, SIGNATURE_NAME)
    if bundle is None:
        raise NotFound(f"version {version.version} has no model signature (base checkpoints are the uploader's)")
    return Response(bundle, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}-v{version.version}.sig"'})


@router.post("/{name}/versions/{ref}/promote", response_model=VersionView)
def promote_version(name: str, ref: str, key: Admin, session: SessionDep) -> VersionView:
    model = get_model(session, name=name)
    version = promote(session, model=model, ref=ref, actor=actor_of(key))
    return version_view(version, current=model.current_version)
