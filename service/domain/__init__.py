"""Domain rules: plain keyword-only functions over a Session. They flush; the caller commits.

Lock order. Every transaction that waits for row locks takes them in this order, so no two
transactions can each hold what the other waits for:

    1. the model row            (claim, publish, fail, stop: serialises the jobs of one model)
    2. job rows                 (several jobs of one model only while holding the model row)
    3. request rows             (a request of a job only while holding that job's row)
    4. anything else: samples, versions, reports, outbox rows
    5. the audit chain's advisory lock, taken at commit after the final flush (service.audit.chain)

A path that does not need a level skips it; none goes back up. Reads that decide which rows to
lock (a request's job id, a job's model id) are plain reads, re-checked once the locks are held.
Background sweeps (lease recovery, the outbox dispatcher, purge) lock with SKIP LOCKED: they
never wait, so they cannot close a cycle either.
"""
