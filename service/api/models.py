"""Model registry, versions, checkpoint download and promotion."""

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError

from service.api.deps import Admin, AnyRole, SessionDep, StoreDep
from service.api.responses import errors
from service.api.routing import GuardedRoute
from service.api.views import model_view, version_view
from service.audit.model_keys import SIGNATURE_NAME
from service.db.enums import VersionStatus
from service.domain.auth import actor_of
from service.domain.models import get_model, list_models, register_model
from service.domain.versions import downloadable, get_version, list_versions, promote
from service.errors import Gone, NotFound, Unprocessable
from service.schemas.registry import ModelSpec, ModelView, VersionView

router = APIRouter(prefix="/models", tags=["models"], responses=errors(), route_class=GuardedRoute)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ModelView)
def create(
    key: Admin,
    session: SessionDep,
    store: StoreDep,
    spec: Annotated[str, Form(description='ModelSpec as JSON, e.g. {"name": "fmnist-mae", "training_dataset": "fmnist-train", "proxy_dataset": "fmnist-test"}')],
    checkpoint: Annotated[UploadFile, File(description="Base checkpoint (safetensors with an Oblivio header)")],
    features: Annotated[
        UploadFile | None, File(description="Evaluation feature network (safetensors), e.g. the demo classifier")
    ] = None,
) -> ModelView:
    try:
        parsed = ModelSpec.model_validate_json(spec)
    except ValidationError as exc:
        items = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Unprocessable({"message": "invalid model spec; nothing was recorded", "items": items}) from exc
    model = register_model(
        session, spec=parsed, checkpoint=checkpoint.file, features=features.file if features else None, store=store,
        actor=actor_of(key),
    )
    return model_view(model)


@router.get("", response_model=list[ModelView])
def index(_: AnyRole, session: SessionDep) -> list[ModelView]:
    return [model_view(m) for m in list_models(session)]


@router.get("/{name}", response_model=ModelView)
def show(name: str, _: AnyRole, session: SessionDep) -> ModelView:
    return model_view(get_model(session, name=name))


@router.get("/{name}/versions", response_model=list[VersionView])
def versions(name: str, _: AnyRole, session: SessionDep) -> list[VersionView]:
    model = get_model(session, name=name)
    return [version_view(v, current=model.current_version) for v in list_versions(session, model=model)]


@router.get(
    "/{name}/versions/{ref}/checkpoint",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "safetensors checkpoint"}, **errors(410)},
)
def download(name: str, ref: str, key: AnyRole, session: SessionDep, store: StoreDep) -> FileResponse:
    """A published version for any role; a superseded one (pre-erasure) for admins only; a purged one is 410."""
    model = get_model(session, name=name)
    version = downloadable(session, model=model, ref=ref, role=key.role, actor=actor_of(key))
    path = store.local_path(version.checkpoint_digest)
    if not path.is_file():
        raise NotFound(f"checkpoint of version {version.version} is {version.status.value} and no longer stored")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{name}-v{version.version}.safetensors",
        headers={"X-Checkpoint-Sha256": version.checkpoint_digest, "X-Model-Version": str(version.version)},
    )


@router.get(
    "/{name}/versions/{ref}/signature",
    responses={200: {"content": {"application/json": {}}, "description": "OpenSSF model-signing bundle"}},
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
