"""The transparency log: signed checkpoints, inclusion and consistency proofs, and the export."""

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from service.api.deps import AnyRole, Auditor, SessionDep, SettingsDep, SignerDep
from service.api.responses import errors
from service.api.routing import GuardedRoute
from service.audit import logstore
from service.audit.note import verifier_key
from service.audit.translog import b64
from service.db.models import AuditCheckpoint
from service.errors import NotFound, Unprocessable

router = APIRouter(tags=["transparency log"], responses=errors(), route_class=GuardedRoute)
MAX = 2**62


class CheckpointView(BaseModel):
    size: int
    root_hash: str  # base64, as in the note
    created_at: str
    checkpoint: str  # the signed note (C2SP tlog-checkpoint)
    verifier_key: str  # the signed-note verifier key of the log's Ed25519 key


class InclusionProof(BaseModel):
    index: int
    size: int
    leaf_hash: str
    inclusion_proof: list[str]
    checkpoint: str


class ConsistencyProof(BaseModel):
    first: int
    second: int
    consistency_proof: list[str]
    first_checkpoint: str
    second_checkpoint: str


def _view(cp: AuditCheckpoint, settings, signer) -> CheckpointView:
    return CheckpointView(size=cp.size, root_hash=b64(bytes.fromhex(cp.root_hash)), created_at=cp.created_at.isoformat(),
                          checkpoint=cp.note, verifier_key=verifier_key(settings.audit_log_origin, signer.public_key))


def _checkpoint(session, size: int | None) -> AuditCheckpoint:
    cp = logstore.latest_checkpoint(session) if size is None else logstore.checkpoint_of_size(session, size)
    if cp is None:
        raise NotFound("no checkpoint signed yet" if size is None else f"no checkpoint of size {size}")
    return cp


@router.get("/audit/checkpoints/latest", response_model=CheckpointView)
def latest(_: AnyRole, session: SessionDep, settings: SettingsDep, signer: SignerDep) -> CheckpointView:
    """The newest signed checkpoint of the audit log (404 before the first one)."""
    return _view(_checkpoint(session, None), settings, signer)


@router.get("/audit/checkpoints/{size}", response_model=CheckpointView)
def by_size(size: Annotated[int, Path(ge=1, le=MAX)], _: AnyRole, session: SessionDep, settings: SettingsDep, signer: SignerDep) -> CheckpointView:
    """The checkpoint signed at this tree size (404 if none was)."""
    return _view(_checkpoint(session, size), settings, signer)


@router.get("/audit/proofs/inclusion", response_model=InclusionProof)
def inclusion(
    _: AnyRole,
    session: SessionDep,
    index: Annotated[int, Query(ge=0, le=MAX, description="leaf index of the event")],
    size: Annotated[int | None, Query(ge=1, le=MAX, description="a checkpoint's size; default the latest")] = None,
) -> InclusionProof:
    """RFC 9162 audit path of leaf `index` in the tree of a signed checkpoint; with that checkpoint."""
    cp = _checkpoint(session, size)
    if index >= cp.size:
        raise Unprocessable(f"leaf {index} is not in the checkpoint of size {cp.size}")
    proof = logstore.inclusion_proof(session, index, cp.size)
    leaf = logstore.leaf_hash(session, index)
    return InclusionProof(index=index, size=cp.size, leaf_hash=b64(leaf), inclusion_proof=[b64(p) for p in proof],
                          checkpoint=cp.note)  # fmt: skip


@router.get("/audit/proofs/consistency", response_model=ConsistencyProof)
def consistency(
    _: AnyRole,
    session: SessionDep,
    first: Annotated[int, Query(ge=1, le=MAX, description="the older checkpoint's size")],
    second: Annotated[int | None, Query(ge=1, le=MAX, description="the newer checkpoint's size; default the latest")] = None,
) -> ConsistencyProof:
    """RFC 9162 consistency proof that the tree of checkpoint `second` extends that of checkpoint `first`."""
    old, new = _checkpoint(session, first), _checkpoint(session, second)
    if old.size > new.size:
        raise Unprocessable(f"first ({old.size}) must not be larger than second ({new.size})")
    proof = logstore.consistency_proof(session, old.size, new.size)
    return ConsistencyProof(first=old.size, second=new.size, consistency_proof=[b64(p) for p in proof],
                            first_checkpoint=old.note, second_checkpoint=new.note)  # fmt: skip


@router.get(
    "/audit/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "checkpoints, then every leaf"}},
)
def export(_: Auditor, session: SessionDep) -> StreamingResponse:
    """The whole log as JSON lines: every signed checkpoint, then every sealed entry with its stored leaf hash.
    `oblivio audit verify FILE` re-derives the tree from it offline."""
    lines = [json.dumps(line, separators=(",", ":")) + "\n" for line in logstore.export(session)]

    def body() -> Iterator[str]:
        yield from lines

    return StreamingResponse(body(), media_type="application/x-ndjson")
