"""Speed and memory benchmarks of recbole-tmcdr: ``python speed/run_all.py`` or ``make speed`` (see speed/README.md).

Accuracy is measured by ``python -m recbole_tmcdr.benchmark`` with the specs in ``benchmarks/specs/``."""
