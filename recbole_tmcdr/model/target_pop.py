"""Target-only popularity: the "no transfer" floor of every cold-start report.

Ranks target items by their number of training (warm) target interactions; every cold user gets the
same list. Cold users' target interactions never reach the counts (they are not in the training split).
"""

import torch

from recbole_tmcdr.model.cold_start_recommender import ColdStartRecommender
from recbole_tmcdr.registry import register_model


@register_model('TargetPop')
class TargetPop(ColdStartRecommender):
    """Item popularity in the training target interactions."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        items = torch.as_tensor(dataset.target_domain_dataset.inter_feat[self.TARGET_ITEM_ID]).long()
        counts = torch.bincount(items, minlength=self.target_num_items).float()
        self.register_buffer('item_count', counts[:self.target_num_items])
        # RecBole's trainer and checkpoints expect at least one parameter.
        self.fake_parameter = torch.nn.Parameter(torch.zeros(1))

    def calculate_loss(self, interaction):
        raise RuntimeError('TargetPop has nothing to train: its train_epochs must be empty of OVERLAP phases.')

    def predict(self, interaction):
        return self.item_count[interaction[self.TARGET_ITEM_ID]]

    def full_sort_predict(self, interaction):
        users = interaction[self.TARGET_USER_ID]
        return self.item_count.unsqueeze(0).expand(len(users), -1).reshape(-1)
