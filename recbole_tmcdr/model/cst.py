"""CST: Coordinate System Transfer.

Reference: Weike Pan, Evan W. Xiang, Nathan N. Liu, Qiang Yang. "Transfer Learning in Collaborative
Filtering for Sparsity Reduction." AAAI 2010.

CST learns the "coordinate system" (the latent factors) of the users in an auxiliary (source) domain, then
factorises the target data with factors initialised from it and regularised towards it:

    SOURCE phase  pre-train the source base model (the same cached pre-training as EMCDR's source model);
    TARGET phase  U^t := U^s (overlapping users), then minimise  L_target + cst_reg_weight * ||U^t_b - U^s_b||^2,

where ``L_target`` is the base model's own loss on the target training interactions and the regulariser is
the mean over the batch's rows (positives) of the squared distance between a user's target and (frozen)
source factors. A cold user has no target training row, so its target factor is, by construction, its
source factor: CST's bridge is the identity (:meth:`build_bridge`), and the regulariser keeps the warm users
-- hence the target item factors learned against them -- in the source coordinate system.

Differences from the paper, forced by the setting: the paper transfers both user AND item coordinate
systems (two-sided, with shared items) and factorises R ~ U B V^T with orthonormal U, V by alternating
updates; here the two domains share users only (disjoint items), so only the user side is transferred, the
target item factors start random, and the factorisation is the base model's (MF by default) trained with
Adam. The TARGET phase is validated on the cold validation users and never cached (it depends on
``cst_reg_weight``), see :class:`~recbole_tmcdr.trainer.joint_trainer.JointTrainer`.
"""

import torch
from torch import nn

from recbole_tmcdr.model.cross_domain_mapping import CrossDomainMappingRecommender
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.registry import register_model
from recbole_tmcdr.validation import Rule, non_negative


@register_model('CST')
class CST(CrossDomainMappingRecommender):
    """Target base model initialised from, and regularised towards, the source user factors."""

    trainer = 'JointTrainer'
    phase_loader_modes = {Phase.TARGET: Phase.TARGET}  # the regularised target model is validated on cold users
    tiny_train_epochs = ["SOURCE:2", "TARGET:2"]  # phases of the common test suite's tiny runs
    train_phases = (Phase.SOURCE, Phase.TARGET)  # no bridge: the target model is regularised towards the source
    config_rules = {'cst_reg_weight': Rule('float', non_negative, '>= 0')}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.reg_weight = config['cst_reg_weight']
        if not (isinstance(self.reg_weight, (int, float)) and not isinstance(self.reg_weight, bool)
                and self.reg_weight >= 0):
            raise ValueError(f"The 'cst_reg_weight' parameter of CST must be a float >= 0. "
                             f'Got {self.reg_weight!r} instead.')

    def build_bridge(self, config):
        # CST maps nothing: a cold user's target factor IS its source factor (the shared coordinate system).
        return nn.Identity()

    def set_phase(self, phase):
        super().set_phase(phase)
        if self.phase == Phase.TARGET:
            # Initialise the target user factors from the (pre-trained) source ones: the overlapping users' rows,
            # ids [0, overlapped_num_users) in both tables (target-only users have no source factor).
            overlapped = self.overlapped_num_users
            with torch.no_grad():
                self.target_user_embedding.weight[:overlapped].copy_(self.source_user_embedding.weight[:overlapped])

    def freeze_pretrained(self):
        """Only the source model is frozen: the TARGET phase trains the target tables."""
        for module in self.pretrained_modules(Phase.SOURCE).values():
            module.weight.requires_grad_(False)

    def coordinate_regulariser(self, users):
        """Mean over ``users`` of ||u^t - u^s||^2 (source factors are constants)."""
        target = self.target_user_embedding(users)
        source = self.source_user_embedding(users).detach()
        return (target - source).pow(2).sum(-1).mean()

    def calculate_loss(self, interaction):
        if self.phase == Phase.SOURCE:
            return self.pretrain_loss(interaction, Phase.SOURCE)
        if self.phase != Phase.TARGET:
            raise RuntimeError(f'CST trains in SOURCE and TARGET phases only (got {self.phase}).')
        users, _, _ = self.split_negatives(interaction[self.TARGET_USER_ID], interaction[self.TARGET_ITEM_ID],
                                           interaction[self.TARGET_NEG_ITEM_ID])
        return self.pretrain_loss(interaction, Phase.TARGET) + self.reg_weight * self.coordinate_regulariser(users)
