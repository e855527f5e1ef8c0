"""One rank of ``run_distributed_test``: ``python -m ... PAYLOAD RESULT_DIR``."""

from __future__ import annotations

import gc
import os
import pickle
import sys
import traceback
from pathlib import Path


def main(payload_path: str, result_dir: str) -> int:
    rank = int(os.environ["RANK"])
    out = Path(result_dir)
    fn, args, kwargs, backend, init_pg = pickle.loads(Path(payload_path).read_bytes())
    import torch.distributed as dist

    try:
        if init_pg:
            dist.init_process_group(
                backend=backend, rank=rank, world_size=int(os.environ["WORLD_SIZE"])
            )
        result = fn(*args, **kwargs)
        (out / f"rank{rank}.result").write_bytes(pickle.dumps(result))
        if dist.is_initialized():
            # no rank tears down its gloo pairs while a peer still has traffic in flight
            # (that aborts the peer with "terminate called without an active exception")
            dist.barrier()
        return 0
    except BaseException:
        (out / f"rank{rank}.err").write_text(traceback.format_exc())
        return 1
    finally:
        # FSDP2/DTensor can keep finished gloo work objects alive; free them while the
        # interpreter is whole, then tear the groups down
        gc.collect()
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    code = main(sys.argv[1], sys.argv[2])
    sys.stdout.flush()
    sys.stderr.flush()
    # skip interpreter finalization: gloo threads still holding tensors abort the process there
    # ("terminate called without an active exception") after the rank's work is done and saved
    os._exit(code)
