"""The imports point one way, and the deployment files validate without a Docker engine."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_roots(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        roots = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = roots
    return found


def test_service_never_imports_worker_or_torch():
    offenders = {f: r & {"worker", "torch", "torchvision", "numpy"} for f, r in imported_roots("service").items()}
    assert not {f: r for f, r in offenders.items() if r}


def test_unlearn_core_is_pure_torch():
    forbidden = {"sqlalchemy", "celery", "fastapi", "service", "pydantic", "httpx", "redis"}
    offenders = {f: r & forbidden for f, r in imported_roots("worker/unlearn").items()}
    assert not {f: r for f, r in offenders.items() if r}


@pytest.mark.parametrize(
    "command",
    [["docker-compose", "-f", "docker-compose.yml", "config", "-q"], ["hadolint", "Dockerfile"]],
    ids=["compose", "hadolint"],
)
def test_deployment_files_validate(command):
    tool = shutil.which(command[0], path=str(Path(sys.executable).parent)) or shutil.which(command[0])
    assert tool, f"{command[0]} is installed with the dev extra"
    result = subprocess.run([tool, *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
