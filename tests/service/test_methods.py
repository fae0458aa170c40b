"""Choosing an unlearning method per request: accepted methods, their parameters, and refusals."""

import uuid

from service.db.enums import Method, Role
from service.db.models import Job
from service.domain.families import SAMPLER_METHODS
from tests.service.test_requests import counts, submit


MASKED_METHODS = [m for m in Method if m.value not in SAMPLER_METHODS]  # the test model is an MAE


def test_each_method_is_accepted_and_travels_to_its_job(api):
    keys = [f"tr-{label}-00{j}" for label in ("cat", "dog") for j in range(4)]
    for key, method in zip(keys, MASKED_METHODS, strict=False):  # more keys than methods
        response = submit(api, {"model": "m", "samples": [key], "method": method.value})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["method"] == method.value
        assert api.session.get(Job, uuid.UUID(body["job"]["id"])).method is method
    assert counts(api) == (len(MASKED_METHODS),) * 3


def test_a_sampler_method_on_a_masked_model_is_refused_with_nothing_recorded(api):
    for method in SAMPLER_METHODS:
        response = submit(api, {"model": "m", "samples": ["tr-cat-000"], "method": method})
        assert response.status_code == 422, response.text
        assert response.json()["detail"]["items"][0]["field"] == "method"
    assert counts(api) == (0, 0, 0)


def test_default_method_is_encoder_l2(api):
    assert submit(api, {"model": "m", "samples": ["tr-cat-000"]}).json()["method"] == "encoder_l2"


def test_method_parameters_are_recorded_in_the_job_config(api):
    body = {"model": "m", "samples": ["tr-cat-000"], "method": "gradient_surgery",
            "config": {"params": {"forget_objective": "max_loss"}, "alpha": 0.5}}  # fmt: skip
    response = submit(api, body)
    assert response.status_code == 201, response.text
    job = api.session.get(Job, uuid.UUID(response.json()["job"]["id"]))
    assert job.config["params"] == {"forget_objective": "max_loss"} and job.config["alpha"] == 0.5
    assert job.config["lr"] == 0.001  # the model's defaults are still merged in
    bounded = submit(api, {"model": "m", "samples": ["tr-cat-001"], "method": "max_loss",
                           "config": {"params": {"forget_bound": 0.2}}})  # fmt: skip
    assert bounded.status_code == 201 and bounded.json()["config"]["params"] == {"forget_bound": 0.2}


def test_unknown_method_is_422_naming_the_known_ones(api):
    response = submit(api, {"model": "m", "samples": ["tr-cat-000"], "method": "forget_harder"})
    assert response.status_code == 422
    [item] = response.json()["detail"]["items"]
    assert item["loc"] == ["body", "method"]
    assert "encoder_l2" in item["msg"] and "gradient_surgery" in item["msg"]
    assert counts(api) == (0, 0, 0)


def test_bad_method_parameters_are_422_with_a_clear_message(api):
    cases = {
        ("encoder_l2", "x"): "config.params do not fit method 'encoder_l2': unknown key(s) ['x']; known keys: none",
        ("max_loss", "bound"): "config.params do not fit method 'max_loss': unknown key(s) ['bound']; known keys: ['forget_bound']",
        ("max_loss", "forget_bound"): "config.params do not fit method 'max_loss': forget_bound: Input should be greater than 0",
        ("gradient_surgery", "forget_objective"): "config.params do not fit method 'gradient_surgery': forget_objective: Input should be 'encoder_l2' or 'max_loss'",
        ("gradient_surgery", "forget_bound"): "config.params do not fit method 'gradient_surgery': unknown key(s) ['forget_bound']; known keys: ['forget_objective']",
    }  # fmt: skip
    values = {"x": 1, "bound": 1, "forget_bound": -1, "forget_objective": "ascend"}
    for (method, key), message in cases.items():
        body = {"model": "m", "samples": ["tr-cat-000"], "method": method, "config": {"params": {key: values[key]}}}
        response = submit(api, body)
        assert response.status_code == 422, (method, key)
        [item] = response.json()["detail"]["items"]
        assert item["loc"] == ["body"] and message in item["msg"], item
    assert counts(api) == (0, 0, 0)


def test_params_must_be_an_object(api):
    body = {"model": "m", "samples": ["tr-cat-000"], "method": "max_loss", "config": {"params": [1, 2]}}
    assert submit(api, body).status_code == 422
    assert submit(api, body, role=Role.officer).json()["error"] == "ValidationError"


def test_forget_target_override_is_recorded_in_the_job_config(api):
    """encoder-L2's forget target (noise reproduces the paper) travels to the job like any setting."""
    body = {"model": "m", "samples": ["tr-cat-000"], "config": {"forget_target": "noise"}}
    response = submit(api, body)
    assert response.status_code == 201, response.text
    job = api.session.get(Job, uuid.UUID(response.json()["job"]["id"]))
    assert job.config["forget_target"] == "noise"
    mixture = submit(api, {"model": "m", "samples": ["tr-cat-001"],
                           "config": {"forget_target": "mixture", "noise_share": 0.4, "substitutes": 2}})  # fmt: skip
    assert mixture.status_code == 201, mixture.text
    assert {k: mixture.json()["config"][k] for k in ("forget_target", "noise_share", "substitutes")} == {
        "forget_target": "mixture", "noise_share": 0.4, "substitutes": 2}
