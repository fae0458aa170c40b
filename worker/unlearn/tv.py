"""Import torchvision so that it works on a CPU-only torch.

The pinned torchvision wheel (0.28.0) is a CUDA build. On a CPU-only torch its compiled
extension does not register the ``torchvision::*`` operators, and ``import torchvision``
fails inside ``torchvision._meta_registrations`` with
``RuntimeError: operator torchvision::nms does not exist``.

Only the two registration modules need those operators; the pure-Python parts we use
(transforms, ``utils.make_grid``/``save_image``, ``datasets.mnist.read_image_file``) do not.
So on that error we drop the half-imported ``torchvision*`` modules, put empty stand-ins for
the two registration modules into ``sys.modules`` and import again. The compiled ops
(``ops.nms``, ``ops.roi_align``, ...) stay unusable; nothing in Oblivio calls them.

Everything in ``worker`` that needs torchvision goes through :func:`import_torchvision`.
"""

from __future__ import annotations

import functools
import sys
import types

# Modules of torchvision that need the compiled operators at import time.
_REGISTRATION_MODULES = (
    "torchvision._meta_registrations",
    "torchvision._autograd_registrations",
)


def _forget_partial_import() -> None:
    """Remove every ``torchvision`` / ``torchvision.*`` entry left by a failed import."""
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]


@functools.cache
def import_torchvision() -> types.ModuleType:
    """Return the ``torchvision`` module, importing it once (idempotent, cached).

    Falls back to stub registration modules when the compiled operators are missing
    (CPU-only torch); see the module docstring. Any other import error propagates.
    """
    try:
        import torchvision
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
        _forget_partial_import()
        for name in _REGISTRATION_MODULES:
            sys.modules[name] = types.ModuleType(name)
        import torchvision
    return torchvision
