"""A base version's teacher cache in the artifact store: find it, or build it and store it.

The cache sits next to the checkpoint it was computed from (``store.put_derived(digest, name)``),
named by its :class:`CacheKey` (checkpoint digest, proxy manifest digest, bank seed and size,
storage dtype), so a new version, another proxy manifest or another bank never finds a stale one;
it is purged with its checkpoint. It covers the whole proxy set, so every retain-free job on the
version (whatever classes it forgets) selects its retain rows from it. ``with_retain`` jobs read
training images that differ per job and keep the uncached path, and so does a family whose latents
would make the cache larger than ``MAX_CACHE_BYTES`` (the diffusion family's skip connections).
"""

import logging
import time
from pathlib import Path

from service.db.enums import Mode
from service.storage import ArtifactStore
from worker.inputs import JobInputs, Part, ReadLog
from worker.unlearn import Adapter
from worker.unlearn.adapters.sampler import is_sampler
from worker.unlearn.teacher_cache import BankSpec, CachedTargets, CacheKey, CacheMismatch, build_cache

log = logging.getLogger("oblivio.teacher_cache")
BANK = BankSpec(draws_per_image=2, noise_size=4096, seed=0, dtype="float16")
MAX_CACHE_BYTES = 1 << 30  # above this the teacher runs every step instead (the cache would cost more than it saves)


def cache_key(inputs: JobInputs, checkpoint_digest: str) -> CacheKey:
    return CacheKey.for_bank(checkpoint_digest, inputs.retain_manifest_digest, BANK, inputs.family)


def cacheable(adapter: Adapter, proxy: Part) -> bool:
    """Whether the cache over ``proxy`` stays under MAX_CACHE_BYTES for this model's latents."""
    size = CachedTargets.estimate_nbytes(adapter, len(proxy.records), BANK)
    if size > MAX_CACHE_BYTES:
        log.info("teacher cache skipped: %d bytes over the %d-byte limit; the teacher runs every step", size,
                 MAX_CACHE_BYTES)
        return False
    return True


def job_targets(store: ArtifactStore, inputs: JobInputs, base: Adapter, reads: ReadLog) -> CachedTargets | None:
    """The cached targets of ``inputs.retain``'s rows for the job's base version (built on a miss)."""
    if inputs.mode is not Mode.retain_free or inputs.proxy is None or not cacheable(base, inputs.proxy):
        return None
    key = cache_key(inputs, inputs.base_digest)
    data = store.get_derived(inputs.base_digest, key.name)
    cache = None
    if data is not None:
        try:
            cache = CachedTargets.from_bytes(data, key)
        except CacheMismatch as exc:  # a name collision or a damaged file: rebuild, never trust it
            log.warning("teacher cache %s refused: %s", key.name, exc)
    if cache is None:
        cache = warm(store, key=key, adapter=base, proxy=inputs.proxy, reads=reads)
    return cache.select([r.sample_key for r in inputs.retain.records]).to(base.device)


def warm(store: ArtifactStore, *, key: CacheKey, adapter: Adapter, proxy: Part, reads: ReadLog) -> CachedTargets:
    """Run the teacher over the whole proxy set once and store the targets next to the checkpoint."""
    started = time.perf_counter()
    images = reads.load(proxy, adapter.image_shape)
    cache = build_cache(adapter, images, [r.sample_key for r in proxy.records], BANK, key)
    data = cache.to_bytes()
    store.put_derived(key.checkpoint_digest, key.name, data)
    log.info("teacher cache %s built for %s: %d images x %d draws + %d noise, %d bytes, %.1f s", key.name,
             key.checkpoint_digest[:12], len(cache), cache.draws_per_image, cache.noise_size, len(data),
             time.perf_counter() - started)  # fmt: skip
    return cache


def warm_next(store: ArtifactStore, inputs: JobInputs, adapter: Adapter, digest: str, roots: list[Path]) -> None:
    """After publication: build the new version's cache so the next job on it starts at the floor."""
    if inputs.mode is not Mode.retain_free or inputs.proxy is None or is_sampler(adapter):
        return  # teacher targets are encoder latents of masked models; a sampler has none
    try:
        if not cacheable(adapter, inputs.proxy):
            return
        warm(store, key=cache_key(inputs, digest), adapter=adapter, proxy=inputs.proxy, reads=ReadLog(roots))
    except Exception:  # the version is published; a missing cache only makes the next job build it
        log.exception("teacher cache for %s not warmed", digest[:12])
