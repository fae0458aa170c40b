"""Rewrite the README's benchmark section from benchmarks/results/*.json.

    python -m benchmarks.table [--readme README.md]

Only the text between the markers ``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` is
replaced; a result file that is missing leaves its table out.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS

START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
README = Path(__file__).resolve().parents[1] / "README.md"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _where(r: dict[str, Any]) -> str:
    d = r["device"]
    gpu = f", {d['gpu']}" if d.get("gpu") else ""
    threads = f", {r['threads']} torch thread(s)" if "threads" in r else ""
    return (f"{d['device']}{gpu}: {d['cpu']}, {d['cpus_available']} CPUs available{threads}, "
            f"load average {d['load_average_at_start'][0]} at start, {r['measured_at']}")


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def engine(r: dict[str, Any]) -> list[str]:
    v, ratios, t = r["variants"], r["ratios"], r["targets"]
    names = {"reference": "(a) reference loop", "ours": "(b) ours (cached targets)", "floor": "(c) floor: student fwd+bwd+step",
             "floor_fwd_bwd": "floor without the optimizer step"}
    lines = [f"**Engine** (`benchmarks/engine.py`, demo MAE, batch {r['batch_size']}; {_where(r)})", "",
             "| variant | ms / step | images / s |", "|---|---:|---:|"]
    lines += [f"| {names[k]} | {v[k]['step_ms']:.1f} | {v[k]['images_per_s']:.0f} |" for k in names if k in v]
    lines += ["", f"reference / ours = **{ratios['reference_over_ours']}** (target ≥ {t['reference_over_ours_min']}: "
              f"{_met(ratios['reference_over_ours'] >= t['reference_over_ours_min'])}); ours / floor = "
              f"**{ratios['ours_over_floor']}** (target ≤ {t['ours_over_floor_max']}: "
              f"{_met(ratios['ours_over_floor'] <= t['ours_over_floor_max'])}); reference / floor = "
              f"{ratios['reference_over_floor']}. Teacher cache: {r['teacher_cache']['bytes'] / 1e6:.1f} MB "
              f"({r['teacher_cache']['images']} images × {r['teacher_cache']['draws_per_image']} draws + "
              f"{r['teacher_cache']['noise_size']} noise, {r['teacher_cache']['dtype']}), built in "
              f"{r['teacher_cache']['build_s']} s.", ""]
    return lines


def retrain(r: dict[str, Any]) -> list[str]:
    u, t, ratio = r["unlearn"], r["retrain"], r["ratios"]
    return [f"**Forget a class vs retrain** (`benchmarks/retrain.py`; {_where(r)})", "",
            "| | steps | seconds |", "|---|---:|---:|",
            f"| unlearning (ours, batch {u['batch_size']}) | {u['steps']} | {u['seconds']:.1f} |",
            f"| teacher cache build (once per version) | | {u['teacher_cache_build_s']:.1f} |",
            f"| retraining without the class (extrapolated: {t['timed_steps']} of {t['recipe_steps']} steps timed) "
            f"| {t['recipe_steps']} | {t['seconds']:.0f} |",
            "", f"retrain / unlearn = **{ratio['retrain_over_unlearn']}×** ({ratio['retrain_over_unlearn_with_cache_build']}× "
            f"counting the cache build; target ≥ {r['targets']['retrain_over_unlearn_min']}×: "
            f"{_met(ratio['retrain_over_unlearn'] >= r['targets']['retrain_over_unlearn_min'])}).", ""]


def api(r: dict[str, Any]) -> list[str]:
    lines = [f"**API** (`benchmarks/api.py`, `POST /unlearn-requests` on Postgres vs a bare FastAPI endpoint; {_where(r)})", "",
             "| clients | Oblivio req/s | p50 ms | p99 ms | errors | ceiling req/s | p50 ms | p99 ms | ratio |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for level in r["levels"]:
        o, c = level["oblivio"], level["ceiling"]
        errors = sum(n for s, n in o["statuses"].items() if s != "201")
        lines.append(f"| {level['concurrency']} | {o['throughput_rps']} | {o['p50_ms']} | {o['p99_ms']} | {errors} | "
                     f"{c['throughput_rps']} | {c['p50_ms']} | {c['p99_ms']} | {level['throughput_ratio']} |")
    top = max(r["levels"], key=lambda lv: lv["concurrency"])
    t = r["targets"]
    ok = top["throughput_ratio"] >= t["throughput_ratio_min"] and top["oblivio"]["p99_ms"] < t["p99_ms_max_at_64"]
    lines += ["", f"Target at {top['concurrency']} clients: ratio ≥ {t['throughput_ratio_min']} and p99 < "
              f"{t['p99_ms_max_at_64']} ms: {_met(ok)}.", ""]
    return lines


def batching(r: dict[str, Any]) -> list[str]:
    lines = [f"**Coalesced requests** (`benchmarks/batching.py`, {r['steps_per_job']} steps per job, "
             f"{r['proxy_images']} proxy images; {_where(r)})", "",
             "| requests in the job | job s (claim → publish) | load s | unlearn s | evaluate s | next version's cache s |",
             "|---:|---:|---:|---:|---:|---:|"]
    for n, j in r["jobs"].items():
        lines.append(f"| {n} | {j['job_s']} | {j.get('load_s', '')} | {j.get('unlearn_s', '')} | "
                     f"{j.get('evaluate_s', '')} | {j['warm_next_s']} |")
    (name, ratio), = r["ratios"].items()
    lines += ["", f"{name.replace('_over_', ' / ')} = **{ratio}** (target ≤ {r['targets']['100_over_1_max']}: "
              f"{_met(ratio <= r['targets']['100_over_1_max'])}). A cold job (teacher cache miss) took "
              f"{r['cold_job']['job_s']} s.", ""]
    return lines


def render() -> str:
    parts = ["", "Generated by `python -m benchmarks.table` from `benchmarks/results/*.json`; do not edit by hand.", ""]
    for name, fn in (("engine", engine), ("engine-cuda", engine), ("retrain", retrain), ("api", api), ("batching", batching)):
        result = _load(name)
        if result is not None:
            parts += fn(result)
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table", description=__doc__.split("\n")[0])
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{args.readme} has no {START} … {END} section")
    section = f"{START}\n{render()}\n{END}"
    args.readme.write_text(re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: section, text, flags=re.S))
    print(f"rewrote the benchmark section of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
