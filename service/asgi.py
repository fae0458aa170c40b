"""ASGI entry point for uvicorn: `uvicorn service.asgi:app`."""

from service.main import create_app

app = create_app()
