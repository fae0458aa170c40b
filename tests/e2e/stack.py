"""A running Oblivio: uvicorn API and a Celery worker as real processes, on Postgres+Redis or embedded."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image

from service.config import Settings
from service.db.enums import Role
from service.db.migrate import upgrade
from service.db.session import make_engine, make_sessionmaker
from service.domain.auth import create_api_key
from tests.conftest import PG_ADMIN, REDIS, REDIS_E2E_DB, fresh_database

CLASSES = ("circle", "square", "stripe")


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    keys: dict[Role, str]
    data_root: Path
    logs: Path
    direct_url: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def client(self, role: Role) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.keys[role]}"}, timeout=30)

    def settings(self) -> Settings:
        return Settings(home=self.env["OBLIVIO_HOME"], database_url=self.direct_url, broker_url=self.env.get("OBLIVIO_BROKER_URL", ""))

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a process with the stack's environment, ``env`` overriding some of it (another host's home)."""
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, *args], env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = proc
        return proc

    def start_api(self) -> subprocess.Popen:
        port = self.url.rsplit(":", 1)[1]
        return self.start("api", "-m", "uvicorn", "service.asgi:app", "--port", port, "--log-level", "warning")

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.logs.glob("*.log")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    kind: str, tmp: Path, extra_env: dict[str, str] | None = None, *, db_port: int | None = None, workers: int = 1,
    pg_admin: str = PG_ADMIN,
) -> Stack:
    """Start API and worker(s). `db_port` routes the processes' database traffic through another port (a proxy);
    `pg_admin` names another Postgres server to create the database on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBLIVIO_")}
    env.update({"OBLIVIO_HOME": str(tmp / "home"), "OBLIVIO_DATA_ROOTS": json.dumps([str(tmp / "data")])})
    env["OBLIVIO_LEASE_SECONDS"] = "30"
    env["OBLIVIO_BATCH_WINDOW_SECONDS"] = "0"
    direct_url = ""
    if kind == "postgres":
        direct_url = env["OBLIVIO_DATABASE_URL"] = fresh_database("oblivio_e2e", admin=pg_admin)
        env["OBLIVIO_BROKER_URL"] = f"{REDIS}/{REDIS_E2E_DB}"
        if not (extra_env or {}).get("OBLIVIO_BROKER_URL"):
            import redis

            redis.Redis.from_url(env["OBLIVIO_BROKER_URL"]).flushdb()
        if db_port is not None:
            env["OBLIVIO_DATABASE_URL"] = direct_url.replace(":5432/", f":{db_port}/")
    env.update(extra_env or {})
    settings = Settings(home=tmp / "home", database_url=direct_url, broker_url=env.get("OBLIVIO_BROKER_URL", ""))
    upgrade(settings)
    with make_sessionmaker(make_engine(settings)).begin() as session:
        keys = {role: create_api_key(session, name=role.value, role=role)[1] for role in Role}
    logs = tmp / "logs"
    logs.mkdir()
    port = free_port()
    stack = Stack(url=f"http://127.0.0.1:{port}", env=env, keys=keys, data_root=tmp / "data", logs=logs,
                  direct_url=direct_url)
    stack.start_api()
    for i in range(workers):
        stack.start(f"worker{i}" if i else "worker", "-m", "worker")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{stack.url}/healthz", timeout=1).status_code == 200:
                return stack
        except httpx.TransportError:
            time.sleep(0.2)
    stack.stop()
    raise RuntimeError("API did not start:\n" + stack.log_tail())


def write_images(root: Path, prefix: str, per_class: int, seed: int) -> list[dict]:
    """Small grey PNGs of three visually different classes, as sample manifest rows."""
    import hashlib
    import random

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for label in CLASSES:
        for i in range(per_class):
            img = Image.new("L", (16, 16))
            px = img.load()
            shift = rng.randrange(4)
            for y in range(16):
                for x in range(16):
                    if label == "circle":
                        px[x, y] = 255 if (x - 8) ** 2 + (y - 8) ** 2 < (4 + shift) ** 2 else 0
                    elif label == "square":
                        px[x, y] = 200 if 3 + shift <= x <= 12 and 3 <= y <= 12 - shift else 20
                    else:
                        px[x, y] = 230 if (x + shift) % 4 < 2 else 10
            key = f"{prefix}-{label}-{i:03d}"
            path = root / f"{key}.png"
            img.save(path)
            rows.append({"sample_key": key, "class_label": label, "uri": str(path),
                         "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    return rows
