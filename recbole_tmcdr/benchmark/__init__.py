"""Benchmark: every (scenario, model, seed) with the paper's learning-rate search on cold VALIDATION users,
resumable results (``results.jsonl``), local-process or Ray parallelism, and a Table-1 / Figure-1 report.

``python -m recbole_tmcdr.benchmark --help`` (run) and ``python -m recbole_tmcdr.benchmark.report OUT`` (report).

Modules: :mod:`.spec` (what runs, config hash), :mod:`.search_space` (each model's grid), :mod:`.runner` (planning,
resume, the run), :mod:`.worker` (one run's trials, in a worker), :mod:`.executor` (where runs execute: in-process,
local processes or Ray, one dispatch loop), :mod:`.display` (progress by phase and epoch), :mod:`.results` (the
JSON-lines file), :mod:`.report` (the report's document and files), :mod:`.aggregate` (its numbers, on a pandas
DataFrame of the runs), :mod:`.stats` (CIs, paired tests, Holm), :mod:`.sections` (its tables and paragraphs),
:mod:`.cold_to_warm` (who leads at each K, a router's choice and margin), :mod:`.figures`, :mod:`.paper` (the
paper's numbers).
"""

from recbole_tmcdr.benchmark.search_space import model_search_space  # noqa: F401
from recbole_tmcdr.benchmark.spec import BenchmarkSpec, SpecError  # noqa: F401


def run_benchmark(spec, **kwargs):
    """See :func:`recbole_tmcdr.benchmark.runner.run_benchmark`."""
    from recbole_tmcdr.benchmark.runner import run_benchmark as run
    return run(spec, **kwargs)


__all__ = ['BenchmarkSpec', 'SpecError', 'model_search_space', 'run_benchmark']
