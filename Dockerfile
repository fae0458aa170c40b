# syntax=docker/dockerfile:1
# Targets (docker build --target ...):
#   api     the FastAPI service and the `oblivio` CLI, without torch
#   worker  the Celery unlearning worker with CUDA torch; --build-arg TORCH_INDEX=cpu builds a CPU-only worker
# Both run as the numeric non-root user 10001 and keep their state under /var/lib/oblivio.
# Each target's virtual environment is built in its own stage; only /opt/venv and the source reach the image.
# The dependency layers depend on pyproject.toml alone, so a code change rebuilds seconds, not torch.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS python
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
WORKDIR /srv/oblivio

FROM python AS api-build
COPY pyproject.toml ./
RUN python -m venv /opt/venv \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install --requirement /tmp/requirements.txt
COPY README.md ./
COPY service ./service
# Editable, so that the code and migrations stay in /srv/oblivio where `oblivio migrate` finds alembic.ini.
RUN pip install --no-deps --editable .

FROM python AS worker-build
ARG TORCH_INDEX=cu128
RUN python -m venv /opt/venv \
 && pip install torch==2.13.0 torchvision==0.28.0 --index-url "https://download.pytorch.org/whl/${TORCH_INDEX}"
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['worker']))" \
      > /tmp/requirements.txt \
 && pip install --requirement /tmp/requirements.txt
COPY README.md ./
COPY service ./service
COPY worker ./worker
RUN pip install --no-deps --editable .

FROM python AS runtime
RUN groupadd --system --gid 10001 oblivio \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/oblivio --shell /usr/sbin/nologin oblivio \
 && install --directory --owner 10001 --group 10001 /var/lib/oblivio /var/lib/oblivio/artifacts /var/lib/oblivio/keys
ENV OBLIVIO_HOME=/var/lib/oblivio

FROM runtime AS api
COPY --from=api-build /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations ./migrations
COPY service ./service
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=5 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["oblivio", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM runtime AS worker
COPY --from=worker-build /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations ./migrations
COPY service ./service
COPY worker ./worker
USER 10001:10001
ENV OBLIVIO_WORKER_METRICS_PORT=9808
EXPOSE 9808
# The solo pool cannot answer `celery inspect ping` while a job runs; the metrics thread can.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ['OBLIVIO_WORKER_METRICS_PORT'], timeout=3)"]
CMD ["python", "-m", "worker"]
