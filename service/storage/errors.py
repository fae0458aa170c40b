"""Errors of the artifact store, shared by its backends."""


class ArtifactDamaged(RuntimeError):
    """A stored blob's bytes do not hash to the digest it is stored under: it is refused, never served or loaded."""

    def __init__(self, digest: str, actual: str, where: str):
        super().__init__(f"artifact {digest[:16]}… at {where} is damaged or was tampered with: its bytes hash to "
                         f"{actual[:16]}…; refused")
        self.digest, self.actual = digest, actual


class StoreUnavailable(RuntimeError):
    """The artifact store did not answer (after the client's own retries): try again later; nothing is lost."""


class StoreRefused(RuntimeError):
    """The configured artifact store cannot be used as it is (the message says why and what to change)."""
