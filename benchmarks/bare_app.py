"""The two ceilings of benchmarks/api.py, served by the same uvicorn as the service.

- ``POST /bare``: a sync FastAPI handler parsing the same JSON body as ``POST /unlearn-requests``
  and answering 201 with a body; no database.
- ``POST /durable``: the same, plus one INSERT and COMMIT into the same Postgres through the same
  driver and pool settings as the service (``service.db.session.make_engine``): the durable ceiling.
  The database URL comes from ``BENCH_DATABASE_URL``.
"""

import os
import uuid
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import text

from service.config import Settings
from service.db.session import make_engine

app = FastAPI()
_engine = make_engine(Settings(database_url=os.environ["BENCH_DATABASE_URL"])) if os.environ.get("BENCH_DATABASE_URL") else None
_INSERT = text("INSERT INTO bench_ceiling (id, model, samples) VALUES (:id, :model, CAST(:samples AS JSON))")


class Body(BaseModel):
    model: str
    samples: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)


@app.post("/bare", status_code=201)
def bare(body: Body) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "status": "queued", "model": body.model, "samples": body.samples,
            "classes": body.classes}


@app.post("/durable", status_code=201)
def durable(body: Body) -> dict[str, Any]:
    row_id = uuid.uuid4()
    with _engine.begin() as connection:  # the 201 is sent after the commit
        connection.execute(_INSERT, {"id": row_id, "model": body.model, "samples": Body.model_dump_json(body)})
    return {"id": str(row_id), "status": "queued", "model": body.model, "samples": body.samples,
            "classes": body.classes}


def create_table(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS bench_ceiling (id UUID PRIMARY KEY, model TEXT NOT NULL, "
                                "samples JSON NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())"))
    engine.dispose()
