"""Model registry, versions, checkpoint download and promotion."""

import time
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.api.deps import Admin, AnyRole, DispatcherDep, SessionDep, SettingsDep, StoreDep
from service.api.responses import errors
from service.api.views import model_view, version_view
from service.db.enums import VersionStatus
from service.domain.auth import actor_of
from service.domain.models import get_model, list_models, register_model
from service.domain.validation import discard_rejected_model, model_status, version_status
from service.domain.versions import get_version, list_versions, promote
from service.errors import Conflict, Gone, NotFound, Unprocessable
from service.schemas.registry import ModelSpec, ModelView, VersionView

router = APIRouter(prefix="/models", tags=["models"], responses=errors())
_POLL_SECONDS = 0.2


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
        raise Unprocessable({"message": "invalid model spec", "items": exc.errors(include_url=False, include_context=False)}) from exc
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
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "safetensors checkpoint"}, **errors(410)},
)
def download(name: str, ref: str, _: AnyRole, session: SessionDep, store: StoreDep) -> FileResponse:
    model = get_model(session, name=name)
    version = get_version(session, model=model, ref=ref)
    if version.status is VersionStatus.validating:
        raise Conflict(f"version {version.version} of model '{name}' is still being validated by a worker")
    if version.status is VersionStatus.rejected:
        raise Gone(f"version {version.version} of model '{name}' was rejected: {'; '.join(version.problems)}")
    path = store.local_path(version.checkpoint_digest)
    if not path.is_file():
        raise NotFound(f"checkpoint of version {version.version} is {version.status.value} and no longer stored")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{name}-v{version.version}.safetensors",
        headers={"X-Checkpoint-Sha256": version.checkpoint_digest, "X-Model-Version": str(version.version)},
    )


@router.post("/{name}/versions/{ref}/promote", response_model=VersionView)
def promote_version(name: str, ref: str, key: Admin, session: SessionDep) -> VersionView:
    model = get_model(session, name=name)
    version = promote(session, model=model, ref=ref, actor=actor_of(key))
    return version_view(version, current=model.current_version)
