"""Accuracy benchmarks of recbole-tmcdr: the specs of ``python -m recbole_tmcdr.benchmark`` (benchmarks/specs/) and
the scripts that summarise or explain their runs. Speed is measured in ``speed/`` instead."""
