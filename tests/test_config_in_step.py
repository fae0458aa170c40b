"""The service's copy of the unlearning settings (it cannot import the worker) matches the worker's:
keys, recommended values, legacy translation, method parameters, gate checks, and what is refused."""

import dataclasses
import math

import pytest
from pydantic import ValidationError

from service.db.enums import Method
from service.domain import unlearn_config as service_config
from service.schemas.unlearn import GATE_CHECKS, METHOD_PARAMS, UnlearnSettings
from worker.gate import CHECKS, DEFAULT_GATE
from worker.sampler_gate import SAMPLER_CHECKS, SAMPLER_GATE
from worker.unlearn import EncoderL2Config
from worker.unlearn import config as worker_config
from worker.unlearn.methods import get_method, list_methods

WIDTHS = [None, 1, 8, 32, 96, 97, 128, 192, 384, 768, 1024, 1280, 4096, 9600, 10**6]


def test_the_settings_have_the_same_keys():
    assert list(UnlearnSettings.model_fields) == [f.name for f in dataclasses.fields(EncoderL2Config)]


@pytest.mark.parametrize("family", ["mae", "diffusion", "gan", "other"])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_recommendation_is_the_same(family, width):
    config = {"image_size": 28} if width is None else {"image_size": 28, "embed_dim": width}
    service = service_config.recommended_defaults(family=family, adapter_config=config)
    assert service == worker_config.recommended_config(family, config).to_dict()
    assert UnlearnSettings.model_validate(service).model_dump() == service  # the service accepts its own values


def test_the_class_defaults_are_the_recommendation_for_an_unknown_model():
    assert service_config.RECOMMENDED == EncoderL2Config().to_dict()
    assert (service_config.REFERENCE_WIDTH, service_config.LR_RANGE) == (
        worker_config.MAE_REFERENCE_WIDTH, worker_config.LR_RANGE)
    assert service_config.WIDTH_KEYS == worker_config.WIDTH_KEYS
    assert service_config.FAMILY_RECOMMENDED == worker_config.FAMILY_RECOMMENDED


@pytest.mark.parametrize("legacy", [
    {"epochs": 3, "max_steps": 600, "lr": 1e-3}, {"epochs": 3}, {"max_steps": None}, {"max_steps": 5, "steps": 7}, {},
])  # fmt: skip
def test_older_configs_are_translated_the_same_way(legacy):
    assert service_config.upgrade_legacy(settings=legacy) == worker_config.upgrade_legacy(legacy)
    assert (service_config.LEGACY_RENAMED, service_config.LEGACY_DROPPED) == (
        worker_config.LEGACY_RENAMED, worker_config.LEGACY_DROPPED)


def test_every_method_and_its_parameters_match():
    assert sorted(m.value for m in Method) == list_methods() == sorted(m.value for m in METHOD_PARAMS)
    for method, schema in METHOD_PARAMS.items():
        worker_params = get_method(method.value).params_class()
        assert schema().model_dump() == dataclasses.asdict(worker_params), method


def test_the_gate_checks_match():
    assert list(GATE_CHECKS) == list(DEFAULT_GATE) + list(SAMPLER_GATE)
    assert GATE_CHECKS == {name: text for name, (_, text) in {**CHECKS, **SAMPLER_CHECKS}.items()}


@pytest.mark.parametrize("bad", [
    {"lr": 0}, {"lr": -5}, {"lr": True}, {"lr": "0.1"}, {"lr": math.inf}, {"lr": math.nan}, {"alpha": 0},
    {"alpha": False}, {"steps": 0}, {"steps": 5.0}, {"steps": "5"}, {"steps": True}, {"batch_size": 7},
    {"batch_size": 0}, {"batch_size": True}, {"optimizer": "sgd"}, {"weight_decay": -1}, {"weight_decay": math.inf},
    {"grad_clip": 0}, {"grad_clip": math.inf}, {"grad_clip": True}, {"seed": -1}, {"seed": 1.5}, {"seed": True},
    {"max_steps": 5}, {"epochs": 3}, {"rm_rf": True},
])  # fmt: skip
def test_what_the_worker_refuses_the_service_refuses(bad):
    with pytest.raises(ValueError):
        EncoderL2Config.from_dict(bad)
    with pytest.raises(ValidationError):
        UnlearnSettings.model_validate(bad)
