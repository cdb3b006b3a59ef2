"""Importing this package registers every plugin model (one module per model)."""

from recbole_tmcdr.model import emcdr, target_pop, tmcdr  # noqa: F401
