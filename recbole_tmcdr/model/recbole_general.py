"""RecBole's own general recommenders as target-only floors under the cold-start protocol.

Reference: Wayne Xin Zhao et al. "RecBole: Towards a Unified, Comprehensive and Efficient Framework for
Recommendation Algorithms." CIKM 2021 (each wrapped model cites its own paper in
``recbole.model.general_recommender``).

``run_recbole_cdr(model='LightGCN', ...)`` builds RecBole's ``LightGCN`` on the TARGET training split only
(``train_data.dataset.target_domain_dataset``), trains it on RecBole-CDR's target training batches with its
own ``calculate_loss`` (TARGET phase, early-stopped on the cold validation users, see
:class:`~recbole_tmcdr.trainer.joint_trainer.JointTrainer`) and evaluates it on the same cold users with the
same evaluators as every other model. No source data is used: this is the "no transfer" floor.

A cold user has no target training row, so a target-only model cannot personalise for it: it gets the MEAN
of the model's score vectors over the users that do have target training rows (warm overlapping and
target-only users). For models that score a user by a dot product with a user vector (BPR, LightGCN, NGCF,
...) this is exactly the score of the mean warm user vector; for Pop it is popularity; for NeuMF and the
history-based models (ItemKNN, EASE, MultiVAE, ...) it is the population-average score. A user with target
training rows (never evaluated under this protocol) gets the model's own scores.

Adaptation to RecBole-CDR: the model sees a config view whose ``USER_ID_FIELD`` / ``ITEM_ID_FIELD`` /
``NEG_PREFIX`` / ``LABEL_FIELD`` are the target split's (``target_user_id``, ...), with RecBole's own model
YAML (``recbole/properties/model/<Name>.yaml``) filling the keys that no plugin or user config sets (the
protocol's ``embedding_size`` etc. therefore win over RecBole's defaults). Batches are converted to the
model's input type: pairwise models get RecBole-CDR's (user, item, negative) batches as they are; pointwise
models get the positives labelled 1 and the sampled negatives labelled 0; traditional models (Pop, ItemKNN,
EASE) get the positives only. Models whose training RecBole runs with a special trainer, or which cannot be
built on a cross-domain split, are listed in :data:`UNSUPPORTED` with the reason.
"""

import copy
import os

import numpy as np
import recbole
import scipy.sparse
import torch
import yaml
from recbole.data.interaction import Interaction
from recbole.model import general_recommender
from recbole.utils import InputType, ModelType

from recbole_tmcdr.model.base_models import BASE_MODELS
from recbole_tmcdr.model.cold_start_recommender import ColdStartRecommender
from recbole_tmcdr.model.graph_propagation import FASTER_MODELS
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.registry import MODELS, RegistryError

# RecBole general models verified under the cold-start protocol (each has properties/model/<Name>.yaml).
SUPPORTED = ('Pop', 'ItemKNN', 'BPR', 'NeuMF', 'LightGCN', 'NGCF', 'EASE', 'MultiVAE')

# Models that score a user by u . v over (user table, item table), with how to read the tables; a cold user who
# revealed K items is folded in from the mean warm user vector with BPR's loss (the loss these models train with).
# The other models ignore the support (mean warm scores at every K).
EMBEDDING_TABLES = {
    'BPR': lambda model: (model.user_embedding.weight, model.item_embedding.weight),
    'LightGCN': lambda model: model.forward(),
    'NGCF': lambda model: model.forward(),
}

# Every other RecBole general model, and why it is not registered.
UNSUPPORTED = {
    'RecVAE': "its training alternates encoder and decoder epochs in RecBole's RecVAETrainer",
    'RaCT': "its three training stages (actor / critic pre-training, fine-tuning) are driven by RecBole's RaCTTrainer",
    'ConvNCF': 'it convolves an embedding_size x embedding_size map per (user, item) pair: infeasible at the '
               "protocol's embedding_size on CPU, and it needs embedding_size >= its CNN's receptive field",
}
for _name in general_recommender.__dict__:
    if isinstance(getattr(general_recommender, _name), type) and _name not in SUPPORTED:
        UNSUPPORTED.setdefault(_name, 'not yet verified under the cold-start protocol: it needs an entry in '
                                      'recbole_tmcdr.model.recbole_general.SUPPORTED and a properties/model YAML')


def statistics_to_tensors(statistics):
    """RecBole ``other_parameter()`` values (tensors, numpy arrays / matrices, scipy sparse matrices) as tensors and
    plain values, which ``torch.load(weights_only=True)`` reads back."""
    encoded = {}
    for name, value in statistics.items():
        if scipy.sparse.issparse(value):
            csr = value.tocsr()
            encoded[name] = {'sparse_format': value.format, 'shape': list(csr.shape),
                             'data': torch.from_numpy(csr.data), 'indices': torch.from_numpy(csr.indices),
                             'indptr': torch.from_numpy(csr.indptr)}
        elif isinstance(value, np.ndarray):
            encoded[name] = {'ndarray': torch.from_numpy(np.asarray(value)), 'matrix': isinstance(value, np.matrix)}
        else:
            encoded[name] = value
    return encoded


def statistics_from_tensors(encoded):
    """The inverse of :func:`statistics_to_tensors` (same types, formats and values)."""
    statistics = {}
    for name, value in encoded.items():
        if isinstance(value, dict) and 'sparse_format' in value:
            csr = scipy.sparse.csr_matrix((value['data'].numpy(), value['indices'].numpy(), value['indptr'].numpy()),
                                          shape=tuple(value['shape']))
            statistics[name] = csr.asformat(value['sparse_format'])
        elif isinstance(value, dict) and 'ndarray' in value:
            array = value['ndarray'].numpy()
            statistics[name] = np.asmatrix(array) if value['matrix'] else array
        else:
            statistics[name] = value
    return statistics


def recbole_model_class(name):
    model_class = getattr(general_recommender, name, None)
    if model_class is None:
        raise RegistryError(f"'{name}' is not a RecBole general model (recbole.model.general_recommender).")
    return model_class


def recbole_model_yaml(name, config):
    """RecBole's own defaults for ``name`` (``recbole/properties/model/<name>.yaml``), or {}."""
    path = os.path.join(os.path.dirname(recbole.__file__), 'properties', 'model', f'{name}.yaml')
    if not os.path.isfile(path):
        return {}
    with open(path, encoding='utf-8') as f:
        return yaml.load(f.read(), Loader=config.yaml_loader) or {}


def recbole_config_view(config, name, dataset):
    """A copy of the cross-domain config as RecBole's model ``name`` expects it on the single-domain ``dataset``."""
    overrides = {key: value for key, value in recbole_model_yaml(name, config).items() if key not in config}
    overrides.update(USER_ID_FIELD=dataset.uid_field, ITEM_ID_FIELD=dataset.iid_field,
                     NEG_PREFIX=dataset.neg_prefix, LABEL_FIELD=dataset.label_field)
    return config.update(overrides)


class RecBoleGeneralAdapter(ColdStartRecommender):
    """A RecBole general model trained on the target training split; cold users get the mean-user scores."""

    trainer = 'JointTrainer'
    phase_loader_modes = {Phase.TARGET: Phase.TARGET}  # trained on the target loader, validated on cold users
    tiny_train_epochs = ["TARGET:2"]  # phases of the common test suite's tiny runs
    train_phases = (Phase.TARGET,)

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        name = config['model']
        if name not in SUPPORTED:
            raise RegistryError(unsupported_message(name))
        target_train = dataset.target_domain_dataset
        model_class = FASTER_MODELS.get(name) or recbole_model_class(name)
        self.recbole_name = name
        self.recbole_model = model_class(recbole_config_view(config, name, target_train), target_train)
        if self.recbole_model.n_items != self.target_num_items:
            raise RuntimeError(f'RecBole {name} was built with {self.recbole_model.n_items} target items, '
                               f'the evaluation ranks {self.target_num_items}.')
        self.traditional = getattr(model_class, 'type', None) == ModelType.TRADITIONAL
        self.folds_in = name in EMBEDDING_TABLES  # from the mean warm user vector (kshot_full_scores)
        self.pointwise = model_class.input_type == InputType.POINTWISE
        self.label_field = target_train.label_field
        self.score_batch_size = max(1, config['eval_batch_size'] // self.target_num_items)
        users = torch.as_tensor(target_train.inter_feat[self.TARGET_USER_ID]).long()
        has_rows = torch.zeros(self.total_num_users, dtype=torch.bool)
        has_rows[users] = True
        self.register_buffer('has_target_rows', has_rows, persistent=False)
        self._mean_scores = None

    # ----- training: the RecBole model's own loss on the target batches, in its input type
    def phase_parameters(self, phase):
        return list(self.recbole_model.parameters()) if phase == Phase.TARGET else []

    def freeze_pretrained(self):
        """Nothing is pre-trained."""

    def recbole_batch(self, interaction):
        users = interaction[self.TARGET_USER_ID]
        pos = interaction[self.TARGET_ITEM_ID]
        neg = interaction[self.TARGET_NEG_ITEM_ID]
        if not (self.traditional or self.pointwise):
            if neg.dim() == 1:
                return interaction
            # grouped negatives (B, k) -> RecBole's pairwise layout: the batch repeated k times, one negative each
            k = neg.shape[1]
            return Interaction({self.TARGET_USER_ID: users.repeat(k), self.TARGET_ITEM_ID: pos.repeat(k),
                                self.TARGET_NEG_ITEM_ID: neg.T.reshape(-1)})
        users, pos, neg = self.split_negatives(users, pos, neg)
        if self.traditional:  # counts / similarities: the observed interactions only
            return Interaction({self.TARGET_USER_ID: users, self.TARGET_ITEM_ID: pos})
        k = neg.shape[1]
        labels = torch.cat([torch.ones_like(pos, dtype=torch.float), torch.zeros(neg.numel(), device=pos.device)])
        return Interaction({self.TARGET_USER_ID: torch.cat([users, users.repeat_interleave(k)]),
                            self.TARGET_ITEM_ID: torch.cat([pos, neg.reshape(-1)]),
                            self.label_field: labels})

    def calculate_loss(self, interaction):
        if self.phase != Phase.TARGET:
            raise RuntimeError(f'RecBole {self.recbole_name} trains in the TARGET phase only (got {self.phase}).')
        return self.recbole_model.calculate_loss(self.recbole_batch(interaction))

    # ----- state: the mean-user scores and RecBole's cached propagations follow the weights
    def reset_score_caches(self):
        self._mean_scores = None
        for name in ('restore_user_e', 'restore_item_e'):  # RecBole graph models drop these only in calculate_loss
            if getattr(self.recbole_model, name, None) is not None:
                setattr(self.recbole_model, name, None)

    def train(self, mode=True):
        self.reset_score_caches()
        return super().train(mode)

    def load_state_dict(self, state_dict, strict=True, **kwargs):
        result = super().load_state_dict(state_dict, strict=strict, **kwargs)
        self.reset_score_caches()
        return result

    def get_extra_state(self):
        # A traditional model's fitted statistics (Pop's counts, ItemKNN's similarities) are not parameters:
        # keep them in the state dict, so the trainer's best state and checkpoints restore them too (as tensors:
        # checkpoints are read with weights_only=True). RecBole's other_parameter() is therefore left empty.
        return statistics_to_tensors(self.recbole_model.other_parameter()) if self.traditional else {}

    def set_extra_state(self, state):
        if state:
            self.recbole_model.load_other_parameter(statistics_from_tensors(copy.deepcopy(state)))

    # ----- scoring
    def user_scores(self, users):
        """The RecBole model's scores of ``users`` (with target training rows) for every target item: (B, N)."""
        model, n_items = self.recbole_model, self.target_num_items
        try:
            scores = model.full_sort_predict(Interaction({self.TARGET_USER_ID: users}))
        except NotImplementedError:  # e.g. NeuMF: score every (user, item) pair, as RecBole's trainer does
            items = torch.arange(n_items, device=users.device)
            scores = model.predict(Interaction({self.TARGET_USER_ID: users.repeat_interleave(n_items),
                                                self.TARGET_ITEM_ID: items.repeat(len(users))}))
        return scores.view(len(users), n_items).float()

    @torch.no_grad()
    def mean_user_scores(self):
        """Mean score vector over the users with target training rows (cached until the weights change)."""
        if self._mean_scores is None:
            warm = self.has_target_rows.nonzero().squeeze(-1)
            total = torch.zeros(self.target_num_items, device=warm.device)
            for start in range(0, len(warm), self.score_batch_size):
                total += self.user_scores(warm[start:start + self.score_batch_size]).sum(0)
            self._mean_scores = total / len(warm)
        return self._mean_scores

    def full_sort_predict(self, interaction):
        users = interaction[self.TARGET_USER_ID]
        has_rows = self.has_target_rows[users]
        scores = self.mean_user_scores().unsqueeze(0).repeat(len(users), 1)
        if has_rows.any():
            scores[has_rows] = self.user_scores(users[has_rows])
        return scores.view(-1)

    def kshot_full_scores(self, users, support_items):
        """Fold-in from the mean warm user vector (dot-product models of :data:`EMBEDDING_TABLES`, K > 0)."""
        tables = EMBEDDING_TABLES.get(self.recbole_name)
        if tables is None or not len(support_items) or not len(support_items[0]):
            return super().kshot_full_scores(users, support_items)
        user_table, item_table = tables(self.recbole_model)
        item_table = item_table[:self.target_num_items].detach()
        warm = self.has_target_rows.nonzero().squeeze(-1)
        prior = user_table[warm].detach().mean(0).expand(len(users), -1)
        return self.foldin(BASE_MODELS.get('BPR')(None), prior, item_table, support_items) @ item_table.T

    def predict(self, interaction):
        users, items = interaction[self.TARGET_USER_ID], interaction[self.TARGET_ITEM_ID]
        has_rows = self.has_target_rows[users]
        scores = self.mean_user_scores()[items].clone()
        if has_rows.any():
            warm = Interaction({self.TARGET_USER_ID: users[has_rows], self.TARGET_ITEM_ID: items[has_rows]})
            scores[has_rows] = self.recbole_model.predict(warm).float()
        return scores


def unsupported_message(name):
    reason = UNSUPPORTED.get(name, 'not adapted to the cold-start protocol')
    return (f"RecBole's general model '{name}' is not supported under the cold-start protocol ({reason}). "
            f"Supported RecBole models: {', '.join(SUPPORTED)}.")


def register_recbole_models():
    """Register every supported RecBole general model under its RecBole name (one adapter class, aliases
    whose YAML is ``RecBoleGeneralAdapter.yaml`` + ``<Name>.yaml``); the others are explained, not unknown,
    when the registry can say why (``Registry.mark_unavailable``)."""
    if hasattr(MODELS, 'mark_unavailable'):
        for name in UNSUPPORTED:
            if name not in MODELS:
                MODELS.mark_unavailable(name, unsupported_message(name))
    for name in SUPPORTED:
        recbole_model_class(name)
        if name in MODELS:
            raise RegistryError(f"RecBole's general model '{name}' clashes with the plugin model registered as "
                                f"'{name}' ({MODELS.get(name).__name__}): rename the plugin model.")
        MODELS.register(name, RecBoleGeneralAdapter)


register_recbole_models()
