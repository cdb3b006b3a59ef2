"""Importing this package registers every plugin trainer."""

from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer, WarmUserLoader  # noqa: F401
