"""benchmarks/table.py renders one engine row per family result file present, old files included."""

import json
import shutil

from benchmarks import table
from benchmarks.common import RESULTS


def test_one_engine_row_per_family_file(tmp_path, monkeypatch):
    shutil.copy(RESULTS / "engine.json", tmp_path / "engine.json")
    shutil.copy(RESULTS / "engine-diffusion.json", tmp_path / "engine-diffusion.json")
    old = json.loads((RESULTS / "engine.json").read_text())  # a file written before ours_live existed
    del old["variants"]["ours_live"], old["ratios"]["reference_over_ours_live"], old["ratios"]["ours_live_over_floor"]
    old["device"]["device"] = "cuda"
    (tmp_path / "engine-cuda.json").write_text(json.dumps(old))
    monkeypatch.setattr(table, "RESULTS", tmp_path)

    rows = [line for line in table.render().splitlines() if line.startswith(("| mae", "| diffusion"))]

    assert [row.split(" | ")[0] for row in rows] == [
        "| mae: fashion-mnist-mae-demo", "| diffusion: fashion-mnist-diffusion-demo",
        "| mae: fashion-mnist-mae-demo (cuda)"]
    assert "the worker runs live" in rows[1] and "the worker runs live" not in rows[0]
    assert [cell.strip() for cell in rows[2].split("|")].count("–") == 3  # ours live and its two ratios, nothing else
