"""What a long-running process does once it has started (``taktline serve``,
``taktline ingest``).

What was made to start (modules, the app, SQLAlchemy's tables and compiled statements)
lives as long as the process. ``freeze`` moves it out of the garbage collector's full
passes, which walked all of it and stopped the ingest 100-400 ms at a time, often while
it held SQLite's write lock (issue 13; 13-21 ms a pass once frozen, bench/README.md).
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze() -> int:
    """Collect once, then freeze every surviving object; how many were frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("start-up: %d objects kept out of the garbage collector's passes", frozen)
    return frozen
