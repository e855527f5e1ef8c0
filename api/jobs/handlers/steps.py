"""``steps``: a diagnostic job of N timed steps that checkpoints after each one.

It exercises everything a real handler does (progress, logs, cancellation, retries, resume
after a worker died) without data or models; the recovery tests and ``earthplat worker``
smoke checks use it. Payload: ``steps`` (default 5), ``sleep_s`` per step (default 0.1),
``fail_attempts`` (raise on the first N attempts, default 0).
"""

from __future__ import annotations

import json
import time

from api.jobs.context import JobContext, TransientJobError


def run(ctx: JobContext) -> dict:
    p = ctx.params
    steps, sleep_s = p.steps, p.sleep_s
    state_file = ctx.work_dir / "steps.json"
    done = json.loads(state_file.read_text())["done"] if state_file.exists() else 0
    resumed_from = done
    if done:
        ctx.log(f"resuming after step {done}")
    if ctx.attempt <= p.fail_attempts:
        raise TransientJobError(f"planned failure on attempt {ctx.attempt}")
    while done < steps:
        ctx.check()
        time.sleep(sleep_s)
        done += 1
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"done": done}))
        tmp.replace(state_file)  # the checkpoint: atomic
        ctx.log(f"step {done}/{steps}")
        ctx.progress(done / steps, f"step {done}/{steps}")
    return {"steps": steps, "resumed_from": resumed_from, "attempt": ctx.attempt}
