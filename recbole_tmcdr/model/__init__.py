"""Importing this package registers every plugin model (one module per model)."""

from recbole_tmcdr.model import cmf, content_genre, cst, emcdr, k_router, melu, merged_cf, ptupcdr, recbole_general, sscdr, target_pop, tmcdr, tmcdr_adapted  # noqa: F401
