"""The model families a checkpoint may name: the built-in ones and those installed as plugins.

A plugin package declares its adapter under the entry-point group `oblivio.families`; the API
reads the names only (it imports nothing: the adapters need torch, which only workers have).

Kinds (worker/unlearn/adapters/sampler.py): a *masked* family generates from masked images (MAE),
a *sampler* family from latent codes (GAN). Methods work on one kind; a request whose method does
not fit its model's kind is refused at submission (a plugin family's kind is unknown here: its
worker refuses a method that does not fit, and the job fails with that reason).
"""

from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "oblivio.families"
BUILTIN_FAMILIES = frozenset({"diffusion", "gan", "mae"})
SAMPLER_FAMILIES = frozenset({"gan"})  # built-in families of the sampler kind
SAMPLER_METHODS = frozenset({"gan_cascade"})  # the methods for samplers; every other method is for masked models
MASKED_FAMILIES = BUILTIN_FAMILIES - SAMPLER_FAMILIES


def known_families() -> frozenset[str]:
    return BUILTIN_FAMILIES | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}


def method_problem(*, family: str, method: str) -> str | None:
    """Why ``method`` cannot run on a model of ``family``, or None (also None for a plugin family)."""
    if family in SAMPLER_FAMILIES and method not in SAMPLER_METHODS:
        return (f"model family {family!r} generates from latent codes (a sampler): use method "
                f"{' or '.join(sorted(SAMPLER_METHODS))}")
    if family in MASKED_FAMILIES and method in SAMPLER_METHODS:
        return f"method {method!r} is for sampler families ({', '.join(sorted(SAMPLER_FAMILIES))}), not {family!r}"
    return None
