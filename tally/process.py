"""Process-wide tuning for the long-running processes: `tally serve`, `tally worker` (and the benchmarks' API)."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move everything alive after start-up (modules, the app, its routes, SQLAlchemy's metadata: about
    140 000 objects) out of the garbage collector's reach. They live as long as the process, yet every
    full collection walked them all: about 90 ms on the bench machine, during which no request was
    answered and no event processed (bench/webhooks.py's receipt latency showed those stalls)."""
    gc.collect()
    gc.freeze()
