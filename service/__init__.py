"""Oblivio API service: FastAPI over Postgres. Never imports `worker` or torch."""
