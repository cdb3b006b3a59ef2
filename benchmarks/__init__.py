"""Benchmarks of recbole-tmcdr: run ``python benchmarks/run_all.py`` (see README of this folder)."""
