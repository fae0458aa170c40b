"""Datasets and bulk sample registration."""

from fastapi import APIRouter, status

from service.api.deps import Admin, SessionDep, SettingsDep
from service.api.responses import errors
from service.api.routing import GuardedRoute
from service.domain.auth import actor_of
from service.domain.datasets import add_samples, create_dataset, dataset_stats, get_dataset
from service.schemas.registry import DatasetCreate, DatasetView, SamplesAdd, SamplesAdded

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=errors(), route_class=GuardedRoute)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetView)
def create(body: DatasetCreate, key: Admin, session: SessionDep) -> DatasetView:
    dataset = create_dataset(session, name=body.name, kind=body.kind, description=body.description, actor=actor_of(key))
    return DatasetView(**_fields(dataset), sample_count=0, classes=[])


@router.get("/{name}", response_model=DatasetView)
def show(name: str, _: Admin, session: SessionDep) -> DatasetView:
    dataset = get_dataset(session, name=name)
    count, classes = dataset_stats(session, dataset=dataset)
    return DatasetView(**_fields(dataset), sample_count=count, classes=classes)


@router.post("/{name}/samples", response_model=SamplesAdded)
def register_samples(name: str, body: SamplesAdd, key: Admin, session: SessionDep, settings: SettingsDep) -> SamplesAdded:
    dataset = get_dataset(session, name=name)
    added, unchanged = add_samples(
        session, dataset=dataset, samples=body.samples, roots=settings.data_roots, actor=actor_of(key)
    )
    count, _classes = dataset_stats(session, dataset=dataset)
    return SamplesAdded(dataset=name, added=added, unchanged=unchanged, sample_count=count)


def _fields(dataset) -> dict:
    return {"name": dataset.name, "kind": dataset.kind, "description": dataset.description, "created_at": dataset.created_at}
