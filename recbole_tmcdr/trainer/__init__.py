"""Importing this package registers every plugin trainer."""

from recbole_tmcdr.trainer.cold_start_trainer import ColdStartTrainer, WarmUserLoader  # noqa: F401
from recbole_tmcdr.trainer.meta_trainer import MetaTaskLoader, MetaTrainer  # noqa: F401
from recbole_tmcdr.trainer.joint_trainer import JointTrainer  # noqa: F401
from recbole_tmcdr.trainer.ptupcdr_trainer import PTUPCDRTrainer, WarmUserSampleLoader  # noqa: F401
from recbole_tmcdr.trainer.melu_trainer import MeLUTrainer, UserTaskLoader  # noqa: F401
from recbole_tmcdr.trainer.k_router_trainer import KRouterTrainer  # noqa: F401
