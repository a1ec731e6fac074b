"""``retrofit compare``: every method on the same data, sizes, optimiser, batch and iterations.

``run_compare(CompareConfig(...))`` trains each (method, cost threshold, seed) cell, records the
training wall-clock without evaluation, updates/s, peak memory and the time to the first safe
policy that keeps ≥ 80% of π_ref's normalised reward (checkpoints evaluated off the clock), then
writes ``results.csv``, ``results.md`` and two PNGs. Finished cells are kept and not rerun.
"""

from retrofit.compare.harness import RESULT_COLUMNS, CompareConfig, run_compare

__all__ = ["RESULT_COLUMNS", "CompareConfig", "run_compare"]
