#!/usr/bin/env bash
# The GPU run, one script, on one CUDA machine in under 8 minutes (each step has a time limit; together 7.5):
#   1. the engine benchmark on the demo MAE (reference loop fp32 vs ours bf16 vs the floor);
#   2. the same on a ViT-B/16-sized MAE at 224 px (synthetic images);
#   3. one retain-free job end to end through the API and a worker process on `cuda`;
# then benchmarks/results/gpu.json gathers the three with the GPU's name and the wall time.
#
#   bash benchmarks/gpu.sh            # run (exits 0 with "no CUDA device" where there is none)
#   bash benchmarks/gpu.sh --check    # check the Python entry points accept their arguments; run nothing
#
# PYTHON (default: .venv/bin/python if present, else python3) must have the worker extra with a
# CUDA build of torch. OBLIVIO_FASHION_MNIST names a folder of the Fashion-MNIST .gz files
# (default /usr/share/datasets/fashion-mnist); without them the demo runs on synthetic images.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
FMNIST=${OBLIVIO_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
RESULTS=benchmarks/results
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

ENGINE_DEMO=(-m benchmarks.engine --model mae --device cuda --threads 0 --fashion-mnist "$FMNIST" --steps 20 --rounds 3)
ENGINE_VIT=(-m benchmarks.engine --model vit-b16 --device cuda --threads 0 --images 2048 --steps 20 --rounds 3)
JOB=(-m benchmarks.gpu_job --device cuda --fashion-mnist "$FMNIST" --per-class 300 --timeout 180)

if [ "${1:-}" = "--check" ]; then
    for command in ENGINE_DEMO ENGINE_VIT JOB; do
        declare -n args=$command
        "$PYTHON" "${args[@]}" --dry-run
    done
    exit 0
fi

if ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)' 2>/dev/null; then
    echo "benchmarks/gpu.sh: no CUDA device (torch.cuda.is_available() is false or torch is missing for $PYTHON): nothing run"
    exit 0
fi

started=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "== 1/3 engine benchmark, demo MAE"
timeout 120 "$PYTHON" "${ENGINE_DEMO[@]}"
echo "== 2/3 engine benchmark, ViT-B/16 MAE at 224 px"
timeout 120 "$PYTHON" "${ENGINE_VIT[@]}"
echo "== 3/3 one retain-free job through the API and a worker on cuda"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} timeout 210 "$PYTHON" "${JOB[@]}"
elapsed=$(( $(date +%s) - started ))

"$PYTHON" - "$RESULTS" "$elapsed" <<'EOF'
import json, sys, time
from pathlib import Path

results, elapsed = Path(sys.argv[1]), int(sys.argv[2])
parts = {"engine_demo": "engine-cuda.json", "engine_vit_b16": "engine-vit-b16-cuda.json", "job": "gpu-job.json"}
summary = {"benchmark": "gpu", "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "wall_seconds": elapsed, **{k: json.loads((results / f).read_text()) for k, f in parts.items()}}
(results / "gpu.json").write_text(json.dumps(summary, indent=2) + "\n")
for name in ("engine_demo", "engine_vit_b16"):
    r = summary[name]["ratios"]
    print(f"{name}: reference/ours {r['reference_over_ours']}, ours/floor {r['ours_over_floor']}")
job = summary["job"]
print(f"job: {job['request']['status']} on {job['worker_device_in_report']} in {job['seconds']['job_end_to_end']} s")
print(f"wrote {results / 'gpu.json'} ({elapsed} s in all)")
EOF
