"""``python -m ablate.train.rank PLAN``: one rank of a run that ``ablate.train.distributed.launch_local``
started under torchrun (``PLAN``: the pickled ``RunPlan``). It trains through ``ablate.train.run.run``,
which finds itself in a world and takes its part (rank 0 records the run)."""
from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path
from typing import Optional

import ablate  # noqa: F401  (OpenMP's wait policy, before torch's threads start)
from ablate.track.lock import RunLocked
from ablate.train.distributed import LOCKED_EXIT, world_env
from ablate.train.run import run

log = logging.getLogger("ablate")


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rank = (world_env() or (0, 1, 0))[0]
    prefix = "" if rank == 0 else f"[rank {rank}]"
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"[%(asctime)s]{prefix} %(message)s", datefmt="%H:%M:%S")
    plan = pickle.loads(Path(argv[0]).read_bytes())
    try:
        run(plan)  # every outcome is recorded by rank 0; a stopped run exits 0 like a finished one
    except RunLocked as exc:
        log.warning("skipped: %s", exc)
        return LOCKED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
