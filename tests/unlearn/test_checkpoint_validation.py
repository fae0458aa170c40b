"""A worker's verdict on a base checkpoint: strict layout, finite weights, one finite forward pass."""

from __future__ import annotations

import json
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import torch
from safetensors.torch import save as st_save
from tests.unlearn.tiny_models import TINY_CONFIGS, make_tiny

from worker.unlearn import MAEAdapter
from worker.unlearn.adapters import registry
from worker.unlearn.checkpoint import checkpoint_problems, checkpoint_to_bytes


def _file(tensors: dict[str, torch.Tensor], config: dict, family: str = "mae") -> bytes:
    header = {"format": "oblivio-checkpoint/1", "family": family, "config": config}
    return st_save(tensors, metadata={"oblivio": json.dumps(header)})


def test_a_good_checkpoint_has_no_problems() -> None:
    assert checkpoint_problems(checkpoint_to_bytes(make_tiny("mae"))) == []


def test_wrong_tensor_names_are_named() -> None:
    tensors = make_tiny("mae").state_dict()
    tensors["encoder.norm.weight"] = tensors.pop("norm.weight")
    problems = checkpoint_problems(_file(tensors, TINY_CONFIGS["mae"]))
    assert problems == ["1 missing tensor names for family 'mae': ['norm.weight']",
                        "1 unexpected tensor names for family 'mae': ['encoder.norm.weight']"]


def test_tensors_of_another_config_are_named_by_shape() -> None:
    tensors = make_tiny("mae").state_dict()
    wider = {**TINY_CONFIGS["mae"], "embed_dim": 64, "num_heads": 4}
    problems = checkpoint_problems(_file(tensors, wider))
    assert problems and all("the config needs" in p for p in problems)
    assert any(p.startswith("tensor 'cls_token' has shape (1, 1, 32), the config needs (1, 1, 64)") for p in problems)


def test_nan_weights_and_a_forward_pass_that_produces_nan_are_refused() -> None:
    tensors = make_tiny("mae").state_dict()
    tensors["norm.weight"] = torch.full_like(tensors["norm.weight"], float("nan"))
    assert checkpoint_problems(_file(tensors, TINY_CONFIGS["mae"])) == ["tensor 'norm.weight' holds NaN or infinite values"]
    huge = make_tiny("mae").state_dict()
    huge["decoder_pred.weight"] = torch.full_like(huge["decoder_pred.weight"], 3e38)
    problems = checkpoint_problems(_file(huge, TINY_CONFIGS["mae"]))
    assert problems == ["forward pass on a dummy batch: the generator output holds NaN or infinite values"]


def test_an_unknown_family_or_an_impossible_config_is_a_verdict_not_a_crash() -> None:
    tensors = make_tiny("mae").state_dict()
    assert "unknown model family 'nope'" in checkpoint_problems(_file(tensors, TINY_CONFIGS["mae"], family="nope"))[0]
    assert "invalid MAEConfig" in checkpoint_problems(_file(tensors, {**TINY_CONFIGS["mae"], "patch_size": 5}))[0]
    assert "unknown" in checkpoint_problems(_file(tensors, {**TINY_CONFIGS["mae"], "rm_rf": True}))[0].lower()


def test_a_config_asking_for_a_huge_model_is_refused_without_building_it() -> None:
    tensors = make_tiny("mae").state_dict()
    huge = {**TINY_CONFIGS["mae"], "embed_dim": 16384, "depth": 64, "num_heads": 4}  # ~200 G parameters
    problems = checkpoint_problems(_file(tensors, huge))
    assert problems and "the config needs" in problems[-1]


class PluginAdapter(MAEAdapter):
    """What a plugin package would declare: an adapter class that is not registered yet."""


def test_a_family_declared_as_an_entry_point_is_loaded_when_a_checkpoint_names_it(monkeypatch) -> None:
    plugin = EntryPoint(name="plugin-mae", value=f"{__name__}:PluginAdapter", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group, name: [e for e in [plugin] if e.name == name])
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    assert registry.family_class("plugin-mae") is PluginAdapter
    assert checkpoint_problems(_file(make_tiny("mae").state_dict(), TINY_CONFIGS["mae"], family="plugin-mae")) == []


def test_every_built_in_family_is_declared_as_an_entry_point() -> None:
    from service.domain.families import BUILTIN_FAMILIES

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"][registry.ENTRY_POINT_GROUP]
    assert set(declared) == set(BUILTIN_FAMILIES) == set(registry.list_families())
    assert declared["mae"] == "worker.unlearn.families.mae:MAEAdapter"
    for family, target in declared.items():
        module, _, name = target.partition(":")
        assert getattr(__import__(module, fromlist=[name]), name) is registry.family_class(family)
