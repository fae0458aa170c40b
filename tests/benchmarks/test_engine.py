"""benchmarks/engine.py: its CLI accepts every model, and its timing functions run on every masked family.

The timings themselves are never asserted (they belong to the benchmark run); what is checked is that
each variant runs one real step through the Adapter contract on a tiny model of each family, that the
reference's explicit attention computes the same latents as the fused kernels, and that the cached
subset stays under the cache limit it is given.
"""

import pytest
import torch

from benchmarks import engine
from worker.unlearn import EncoderL2Config, create_adapter, family_class, list_families
from worker.unlearn.adapters.sampler import KIND_MASKED, adapter_kind
from worker.unlearn.teacher_cache import BankSpec, CachedTargets, CacheKey, build_cache

MASKED = [f for f in list_families() if adapter_kind(family_class(f)) == KIND_MASKED]


def test_both_demo_families_are_masked_families():
    assert {"mae", "diffusion"} <= set(MASKED)


@pytest.mark.parametrize(("given", "timed"), [("diffusion", "diffusion"), ("mae", "mae"), ("demo", "mae")])
def test_dry_run_names_the_model_and_runs_nothing(given, timed, capsys):
    assert engine.main(["--model", given, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(f"would time model {timed} on cpu")


def test_the_result_file_of_the_mae_stays_engine_json():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [engine.result_name(m, cpu) for m in engine.MODELS] == ["engine", "engine-diffusion", "engine-vit-b16"]
    assert engine.result_name("diffusion", cuda) == "engine-diffusion-cuda"


@pytest.mark.parametrize("family", MASKED)
def test_every_variant_runs_one_step_on_a_tiny_model(family):
    base = create_adapter(family, family_class(family).test_config(), seed=0)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    forget, proxy = engine.synthetic_data(base, 8)  # (4, C, H, W), (8, C, H, W)
    config = EncoderL2Config(batch_size=4, steps=2)
    spec = BankSpec(draws_per_image=2, noise_size=4)
    estimate = CachedTargets.estimate_nbytes
    per_row = (estimate(base, 1, spec) - estimate(base, 0, spec)) // 2  # bytes of one target and its mask
    limit = per_row * (4 + 3 * 2 + 1) - 1  # the 4 noise rows and 3 images x 2 draws fit, a 4th image does not
    subset = engine.cached_subset(base, proxy, spec, limit=limit)
    assert len(subset) == 3
    cache = build_cache(base, subset, [str(i) for i in range(3)], spec, CacheKey.for_bank("test", "proxy", spec))
    assert cache.nbytes <= limit

    timings = {
        "reference": engine.reference_steps(base, engine.Batches(forget, proxy, 2), config, 1),
        "ours": engine.ours_steps(base, forget, subset, cache, config, 1),
        "ours_live": engine.ours_steps(base, forget, proxy, None, config, 1),
        "floor": engine.floor_steps(base, engine.Batches(forget, proxy, 2), config, 1, optimizer_step=True),
        "floor_fwd_bwd": engine.floor_steps(base, engine.Batches(forget, proxy, 2), config, 1, optimizer_step=False),
    }
    assert {k: len(v) for k, v in timings.items()} == dict.fromkeys(timings, 1)
    assert all(t > 0 for v in timings.values() for t in v)
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items()), "a variant trained the base itself"


@pytest.mark.parametrize("family", MASKED)
def test_the_reference_explicit_attention_computes_the_same_latents(family):
    base = create_adapter(family, family_class(family).test_config(), seed=0)
    base.model.eval()
    explicit = engine.with_explicit_attention(base.clone())
    x = engine.synthetic_data(base, 8)[1]  # (8, C, H, W)
    mask = base.random_mask(len(x), torch.Generator().manual_seed(0))  # (8, L)
    with torch.no_grad():
        fused, materialised = base.encode(x, mask), explicit.encode(x, mask)
    torch.testing.assert_close(materialised, fused, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(4, 6), (4, 2, 3)])
def test_the_reference_loss_weighs_rows_whatever_the_latent_shape(shape):
    z, t_real, t_noise = torch.randn(3, *shape, generator=torch.Generator().manual_seed(0)).unbind(0)
    is_forget = torch.tensor([0.0, 0.0, 1.0, 1.0])
    loss = engine.reference_loss(z, t_real, t_noise, is_forget, alpha=0.25)
    expected = (((z - t_real)[:2] ** 2).sum() + 0.25 * ((z - t_noise)[2:] ** 2).sum()) / z.numel()
    assert loss.ndim == 0
    torch.testing.assert_close(loss, expected)
