"""Domain rules: plain keyword-only functions over a Session. They flush; the caller commits.

Lock order. Every transaction that waits for row locks takes them in this order, so no two
transactions can each hold what the other waits for:

    1. the model row            (claim, publish, fail, stop, coalescing submit and approve)
    2. job rows                 (several jobs of one model only while holding the model row)
    3. request rows             (a request of a job only while holding that job's row; a request
                                 not yet in a job, pending approval, is locked alone)
    4. anything else: samples, versions, reports, outbox rows, webhook deliveries

Audit events take no lock at all: they are inserted unsealed at commit (service.audit.chain) and
numbered later by the one sealer (service.audit.sealer), whose advisory lock no request takes.

A path that does not need a level skips it; none goes back up to levels 1-2. (Because every
locker of a job's requests holds the job row first, the job's holder may touch levels 3 and 4 in
any order: publication inserts the version before completing the requests.) Reads that decide
which rows to lock (a request's job id, a job's model id) are plain reads, re-checked once the
locks are held. Row locks are FOR NO KEY UPDATE, so foreign-key checks of inserts (KEY SHARE on
the parent row) never wait for them.

Background sweeps (lease recovery, the outbox dispatcher, purge, webhook attempts) lock with SKIP LOCKED: they
never wait, so they cannot close a cycle either.
"""
