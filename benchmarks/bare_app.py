"""The ceiling for benchmarks/api.py: a bare FastAPI JSON endpoint, sync handler like the service's, no database."""

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

app = FastAPI()


class Body(BaseModel):
    model: str
    samples: list[str] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)


@app.post("/unlearn-requests", status_code=201)
def create(body: Body) -> dict[str, Any]:
    return {"status": "queued", "model": body.model, "samples": body.samples, "classes": body.classes}
