"""Background work, in one place: write first, enqueue after commit; RQ runs and retries.

- `outbox`: `add_job` writes a job row in the caller's transaction; after commit it is pushed to
  RQ as job `outbox-<id>`; the sweeper pushes rows that never reached Redis.
- `queues`: Redis connections and the queues (`urgent`, `default`, `low`, and `slow` with its own
  worker); unique job ids, so a row is never twice in a queue.
- `runner`: `@handler("kind", queue=, timeout=, attempts=)`; claims a row, runs its handler, records
  attempts and the outcome; RQ retries with the kind's intervals, then the row is FAILED.
- `periodic`: `@every` duties (escalation, callbacks, retention), run each tick, Redis or not.
- `worker`: `hotline worker`: the RQ workers, the sweeper, the duties and the worker's heartbeat.
- `admin`: what `hotline jobs list/retry` and the health check read.
`workers/jobs.py` is the RQ entry point (`run_outbox(outbox_id)`).
"""
