"""Keep a claimed job's lease alive from a background thread for as long as the job runs.

Progress heartbeats only happen between optimiser steps; loading, evaluation and publication can
take longer than a short lease on a busy machine. The keeper renews the lease every
`renew_seconds` (OBLIVIO_LEASE_RENEW_SECONDS, at most a third of the lease), whatever phase the
job is in, so only a dead worker (or a lost database) lets it expire. The lease can therefore be
short: a killed worker's job is re-queued by the API's sweep soon after the lease runs out.
"""

import logging
import threading
import uuid

from sqlalchemy.orm import Session, sessionmaker

from service.domain.jobs import extend_lease

log = logging.getLogger("oblivio.lease")


class LeaseKeeper:
    def __init__(
        self, sessions: sessionmaker[Session], *, job_id: uuid.UUID, owner: str, lease_seconds: int, renew_seconds: float
    ) -> None:
        self._sessions, self._job_id, self._owner, self._lease = sessions, job_id, owner, lease_seconds
        self._interval = max(0.2, min(renew_seconds, lease_seconds / 3))
        self._stop = threading.Event()
        self.lost = threading.Event()  # set once the job is found held by someone else (or finished)
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._sessions.begin() as session:
                    held = extend_lease(session, job_id=self._job_id, owner=self._owner, lease_seconds=self._lease)
            except Exception:  # the database is briefly unreachable: try again next tick
                log.warning("could not extend the lease of job %s", self._job_id, exc_info=True)
                continue
            if not held:
                self.lost.set()
                return
