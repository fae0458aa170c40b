# syntax=docker/dockerfile:1
# Targets: `api` (no torch) and `worker` (CUDA torch by default; --build-arg TORCH_INDEX=cpu for a CPU worker).

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 oblivio \
 && useradd --system --uid 10001 --gid oblivio --home-dir /srv/oblivio --create-home oblivio
WORKDIR /srv/oblivio
COPY pyproject.toml README.md alembic.ini ./
COPY migrations ./migrations
COPY service ./service

FROM base AS api
# hadolint ignore=DL3013
RUN pip install .
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=5 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["uvicorn", "service.asgi:app", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS worker
ARG TORCH_INDEX=cu128
RUN pip install torch==2.13.0 torchvision==0.28.0 --index-url "https://download.pytorch.org/whl/${TORCH_INDEX}"
COPY worker ./worker
# hadolint ignore=DL3013
RUN pip install '.[worker]'
USER 10001
HEALTHCHECK --interval=30s --timeout=10s --retries=3 \
  CMD ["celery", "-A", "worker.main:app", "inspect", "ping", "--timeout", "5"]
CMD ["python", "-m", "worker"]
