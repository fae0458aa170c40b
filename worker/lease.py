"""Keep a claimed job's lease alive from a background thread for as long as the job runs.

Progress heartbeats only happen between optimiser steps; loading, evaluation and publication can
take longer than a short lease on a busy machine. The keeper extends the lease every third of its
length, whatever phase the job is in, so only a dead worker (or a lost database) lets it expire.
"""

import logging
import threading
import uuid

from sqlalchemy.orm import Session, sessionmaker

from service.domain.jobs import extend_lease

log = logging.getLogger("oblivio.lease")


class LeaseKeeper:
    def __init__(self, sessions: sessionmaker[Session], *, job_id: uuid.UUID, owner: str, lease_seconds: int) -> None:
        self._sessions, self._job_id, self._owner, self._lease = sessions, job_id, owner, lease_seconds
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
        interval = max(0.2, self._lease / 3)
        while not self._stop.wait(interval):
            try:
                with self._sessions.begin() as session:
                    held = extend_lease(session, job_id=self._job_id, owner=self._owner, lease_seconds=self._lease)
            except Exception:  # the database is briefly unreachable: try again next tick
                log.warning("could not extend the lease of job %s", self._job_id, exc_info=True)
                continue
            if not held:
                self.lost.set()
                return
