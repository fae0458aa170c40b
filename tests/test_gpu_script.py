"""benchmarks/gpu.sh parses, its Python entry points accept the arguments it gives them, and without a
CUDA device it says so and exits 0 having run nothing (the GPU run itself is never part of the suite)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHON": sys.executable, **env})


def test_the_script_parses_and_its_entry_points_accept_their_arguments():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    checked = run("--check")
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "would time model mae on cuda", "would time model vit-b16 on cuda", "would run one retain-free job on cuda"]


def test_without_a_cuda_device_it_exits_0_and_runs_nothing(tmp_path):
    before = {p.name: p.stat().st_mtime for p in (ROOT / "benchmarks" / "results").iterdir()}
    result = run(CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 0, result.stderr
    assert "no CUDA device" in result.stdout and "nothing run" in result.stdout
    assert {p.name: p.stat().st_mtime for p in (ROOT / "benchmarks" / "results").iterdir()} == before
