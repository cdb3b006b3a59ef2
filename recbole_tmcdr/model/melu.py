"""MeLU: meta-learned user preference estimator, single-domain meta-learning on the warm target users.

Reference: Hoyeop Lee, Jinbae Im, Seongwon Jang, Hyunsouk Cho, Sehee Chung. "MeLU: Meta-Learned User Preference
Estimator for Cold-Start Recommendation." KDD 2019.

A user and an item are embeddings: of their attributes where the scenario has them (``movielens_genre``: a user's
age decade, gender and occupation; an item's genres, averaged, and release decade, next to its id) and of their ids
otherwise. The decision layers (an MLP over [user; item]) score the pair. One warm target user is one task: the
support is the user's first min(``melu_support_size``, n - 1) training interactions, in time order where the scenario
has timestamps and else in a seeded order (the K-shot protocol's order, :mod:`recbole_tmcdr.kshot`), and the query the
rest (at most ``melu_max_query``, drawn anew each epoch). The local update adapts only the decision layers:

    theta'_u = theta - alpha * grad_theta L_support(theta)        (``melu_local_steps`` times, alpha ``melu_local_lr``)
    (theta, E) <- Adam step on  mean_u L_query(theta'_u, E)       (global rate ``learning_rate``)

Second order through the local steps by default (``melu_first_order: True`` drops that term). The embeddings E are
shared and never adapted: the local steps see them as constants, so E's meta-gradient is the query loss's gradient at
theta'_u alone. The loss is implicit feedback with sampled negatives (the paper regresses ratings): the base models'
loss on the MLP's scores of each positive and its ``neg_sampling`` negatives, BCE (``melu_loss: bce``, MF's) or BPR.
Tasks of a meta-batch are vmapped (``torch.func``, the inner loop shared with TMCDR). A cold user at K = 0 is scored
by the global model: the user's attributes, or the mean warm user's id embedding; with K revealed items the decision
layers take the local steps on them first (uniform negatives, seeded as fold-in's).
"""

import os

import numpy as np
import pandas as pd
import torch
from recbole.model.init import xavier_normal_initialization
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from recbole_tmcdr.data.scenario import read_atomic_inter
from recbole_tmcdr.kshot import per_user_rows
from recbole_tmcdr.model.base_models import BASE_MODELS
from recbole_tmcdr.model.cold_start_recommender import ColdStartRecommender
from recbole_tmcdr.model.content_genre import ml100k_genres
from recbole_tmcdr.model.cross_domain_mapping import build_mlp
from recbole_tmcdr.model.tmcdr import QUERY, SUPPORT, inner_loop, with_gradient
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.registry import register_model
from recbole_tmcdr.validation import Rule, is_int, non_negative, positive

# Fields of a meta-batch (recbole_tmcdr.trainer.melu_trainer.UserTaskLoader): TASK_USER (n,) the task's user; per
# phase (SUPPORT, QUERY) '<phase>_pos' (n, S) positives, '<phase>_neg' (n, S, k) negatives, '<phase>_mask' (n, S).
TASK_USER = 'task_user'
LOSSES = {'bce': 'MF', 'bpr': 'BPR'}  # melu_loss -> the base model whose loss it is


def category_codes(table):
    """(rows, fields) codes of a table of tokens (None: unknown -> 0), each field's codes after the previous ones'."""
    codes, offset = np.zeros(table.shape, dtype=np.int64), 1
    for j in range(table.shape[1]):
        index = {v: offset + k for k, v in enumerate(sorted({v for v in table[:, j] if v is not None}))}
        codes[:, j] = [index.get(v, 0) for v in table[:, j]]
        offset += len(index)
    return torch.from_numpy(codes), offset


def id_tokens(dataset, field, size):
    """The token of each id in [0, size) (the toolkit's ``field2id_token`` is not in id order after its remap)."""
    tokens = np.full(size, None, dtype=object)
    for token, index in dataset.field2token_id[field].items():
        if index < size:
            tokens[index] = token
    return tokens


def ml100k_attributes(user_tokens, item_tokens):
    """ml-100k's user attributes (age decade, gender, occupation) and item attributes (release decade, genres) of the
    given tokens (items with their domain prefix, 'tgt:50'): user codes, item codes, item genre multi-hot."""
    from recbole_tmcdr.data.raw_sources.movielens_genre import recbole_ml100k_dir
    users, items = (pd.read_csv(os.path.join(recbole_ml100k_dir(), f'ml-100k.{kind}'), sep='\t', dtype=str)
                    .rename(columns=lambda c: c.split(':')[0]).set_index(f'{kind}_id') for kind in ('user', 'item'))
    user_rows = {u: (str(int(a) // 10), g, o) for u, a, g, o in zip(users.index, users['age'], users['gender'],
                                                                   users['occupation'])}
    decade = {i: str(y)[:3] for i, y in items['release_year'].dropna().items()}
    raw_items = [str(t).split(':', 1)[-1] for t in item_tokens]
    user_codes, n_user_codes = category_codes(np.array([user_rows.get(str(t), (None,) * 3) for t in user_tokens],
                                                       dtype=object))
    item_codes, n_item_codes = category_codes(np.array([[decade.get(i)] for i in raw_items], dtype=object))
    genres = ml100k_genres()
    vocabulary = sorted(set().union(*genres.values()))
    multi_hot = torch.tensor([[float(g in genres.get(i, ())) for g in vocabulary] for i in raw_items])
    return (user_codes, n_user_codes), (item_codes, n_item_codes), multi_hot


def training_rows(target, config):
    """{user: target training items} in the order of the K-shot protocol: by time where the scenario has timestamps
    (read from the split's train file, whose rows RecBole loads in file order), else shuffled with the seed."""
    users = target.inter_feat[target.uid_field].numpy()
    items = target.inter_feat[target.iid_field].numpy()
    if not (config['scenario_stats'] or {}).get('target_has_timestamp'):
        return per_user_rows(users, items, shuffle_seed=config['seed'])
    path = os.path.join(target.dataset_path, f'{target.dataset_name}.{target.benchmark_filename_list[0]}.inter')
    rows = read_atomic_inter(path)
    if not np.array_equal(rows['user'].map(target.field2token_id[target.uid_field]).to_numpy(), users):
        raise RuntimeError(f'{path} does not hold the rows of the target training split in their order.')
    order = np.argsort(rows['timestamp'].to_numpy(), kind='stable')
    return per_user_rows(users[order], items[order])


@register_model('MeLU')
class MeLU(ColdStartRecommender):
    """Attribute / id embeddings shared by all users, decision layers adapted per user (MAML)."""

    trainer = 'MeLUTrainer'
    train_phases = (Phase.TARGET,)
    tiny_train_epochs = ["TARGET:2"]  # phases of the common test suite's tiny runs
    config_rules = {
        'melu_layers': Rule('list', lambda v: all(is_int(h) and h > 0 for h in v), 'of positive integers'),
        'melu_local_steps': Rule('int', non_negative, '>= 0'),
        'melu_local_lr': Rule('float', positive, '> 0'),
        'melu_first_order': Rule('bool'),
        'melu_support_size': Rule('int', positive, '> 0'),
        'melu_max_query': Rule('int', positive, '> 0'),
        'melu_tasks_per_batch': Rule('int', positive, '> 0'),
        'melu_loss': Rule('str', choices=tuple(LOSSES)),
        'melu_features': Rule('bool'),
    }

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.local_steps, self.local_lr = config['melu_local_steps'], config['melu_local_lr']
        self.first_order = config['melu_first_order']
        self.loss_model = BASE_MODELS.get(LOSSES[config['melu_loss']])(config)
        self.score_batch_size = max(1, config['eval_batch_size'] // self.target_num_items)
        d, target = config['embedding_size'], dataset.target_domain_dataset
        self.task_rows = training_rows(target, config)  # {user: items}: the trainer's tasks
        warm = torch.as_tensor(sorted(self.task_rows), dtype=torch.long)
        self.register_buffer('warm_target_users', warm, persistent=False)
        self.item_ids = nn.Embedding(self.target_num_items, d)
        self.features = config['melu_features'] and (config['scenario'] or {}).get('type') == 'movielens_genre'
        if self.features:
            (user_codes, n_user), (item_codes, n_item), genres = ml100k_attributes(
                id_tokens(target, target.uid_field, self.target_num_users),
                id_tokens(target, target.iid_field, self.target_num_items))
            self.register_buffer('user_codes', user_codes, persistent=False)
            self.register_buffer('item_codes', item_codes, persistent=False)
            self.register_buffer('item_genres', genres / genres.sum(-1, keepdim=True).clamp(min=1.0), persistent=False)
            self.user_attributes, self.item_attributes = nn.Embedding(n_user, d), nn.Embedding(n_item, d)
            self.genre_embedding = nn.Linear(genres.shape[1], d, bias=False)
            user_dim, item_dim = user_codes.shape[1] * d, (2 + item_codes.shape[1]) * d
        else:
            self.user_ids = nn.Embedding(self.target_num_users, d)
            user_dim, item_dim = d, d
        self.decision = build_mlp(user_dim + item_dim, config['melu_layers'], 1, 'relu')
        self.apply(xavier_normal_initialization)

    # ----- embeddings (shared, never adapted)
    def user_vectors(self, users):
        """(B, du): the users' attribute embeddings, or their id embeddings (the mean warm user's for a user without
        target training rows)."""
        if self.features:
            return self.user_attributes(self.user_codes[users]).flatten(-2)
        mean = self.user_ids(self.warm_target_users).mean(0)
        has_rows = torch.isin(users, self.warm_target_users).unsqueeze(-1)
        return torch.where(has_rows, self.user_ids(users), mean)

    def item_table(self):
        """(N, di): every target item's id embedding (+ its genres' mean and its release decade's embeddings)."""
        table = self.item_ids.weight
        if not self.features:
            return table
        attributes = self.item_attributes(self.item_codes).flatten(-2)
        return torch.cat([table, self.genre_embedding(self.item_genres), attributes], -1)

    # ----- the decision layers, as a function of their parameters
    def global_parameters(self):
        return dict(self.decision.named_parameters())

    def decision_scores(self, params, users, items):
        """Scores of users (..., du) with items (..., n, di), broadcast over the leading dimensions -> (..., n)."""
        lead = torch.broadcast_shapes(users.shape[:-1], items.shape[:-2])
        users = users.unsqueeze(-2).expand(*lead, items.shape[-2], users.shape[-1])
        inputs = torch.cat([users, items.expand(*lead, *items.shape[-2:])], -1)
        return functional_call(self.decision, params, (inputs,)).squeeze(-1)

    def task_loss(self, params, user, items, mask):
        """One user's loss on their samples: user (du,), items (S, 1 + k, di) positive first, mask (S,) -> mean."""
        scores = self.decision_scores(params, user, items)
        per_sample = self.loss_model.loss_from_scores(scores[:, 0], scores[:, 1:])
        return (per_sample * mask).sum() / mask.sum().clamp(min=1.0)

    def adapt(self, params, support):
        """The local update: ``melu_local_steps`` steps of size ``melu_local_lr`` on the support loss."""
        return inner_loop(self.task_loss, params, support, self.local_steps, self.local_lr, self.first_order)

    def adapted_query_loss(self, params, user, query_items, query_mask, support):
        return self.task_loss(self.adapt(params, support), user, query_items, query_mask)

    # ----- training
    def phase_parameters(self, phase):
        return list(self.parameters()) if phase == Phase.TARGET else []

    def freeze_pretrained(self):
        """Nothing is pre-trained."""

    def calculate_loss(self, interaction):
        """Mean over the meta-batch's users of L_query(theta'_u, E), carrying its meta-gradient (computed task by task
        inside the vmap, deposited into theta and, through the looked-up vectors, into the embedding tables)."""
        table, users = self.item_table(), self.user_vectors(interaction[TASK_USER])
        items = {phase: table[torch.cat([interaction[f'{phase}_pos'].unsqueeze(-1), interaction[f'{phase}_neg']], -1)]
                 for phase in (SUPPORT, QUERY)}
        support = (users.detach(), items[SUPPORT].detach(), interaction[f'{SUPPORT}_mask'])  # constants for the steps
        params = {name: p.detach() for name, p in self.global_parameters().items()}
        task_gradient = grad_and_value(self.adapted_query_loss, argnums=(0, 1, 2))
        (grads, user_grads, item_grads), losses = vmap(task_gradient, in_dims=(None, 0, 0, 0, 0))(
            params, users.detach(), items[QUERY].detach(), interaction[f'{QUERY}_mask'], support)
        n = len(losses)
        return with_gradient(losses.mean(), {**self.global_parameters(), 'user': users, 'items': items[QUERY]},
                             {**{name: g.mean(0) for name, g in grads.items()}, 'user': user_grads / n,
                              'items': item_grads / n})

    # ----- scoring: the global model, or (K-shot) the decision layers adapted on the K revealed items
    def predict(self, interaction):
        items = self.item_table()[interaction[self.TARGET_ITEM_ID]].unsqueeze(-2)
        return self.decision_scores(self.global_parameters(), self.user_vectors(interaction[self.TARGET_USER_ID]),
                                    items).squeeze(-1)

    def full_sort_predict(self, interaction):
        users = self.user_vectors(interaction[self.TARGET_USER_ID])
        return self.decision_scores(self.global_parameters(), users, self.item_table()).view(-1)

    def kshot_full_scores(self, users, support_items):
        n_shots = len(support_items[0]) if len(support_items) else 0
        if n_shots == 0 or self.local_steps == 0:
            return self.full_sort_predict({self.TARGET_USER_ID: users}).view(len(users), -1)
        step = self.score_batch_size
        return torch.cat([self.adapted_scores(users[start:start + step], support_items[start:start + step])
                          for start in range(0, len(users), step)])

    def adapted_scores(self, users, support_items):
        """(B, N) scores of users whose decision layers took the local steps on their K revealed items."""
        table, user_vecs = self.item_table().detach(), self.user_vectors(users).detach()
        pos = torch.stack(list(support_items)).to(users.device)                       # (B, K)
        neg = self.foldin.negatives(1, pos, self.target_num_items)[0]                 # (B, K, k), seeded
        support = (user_vecs, table[torch.cat([pos.unsqueeze(-1), neg], -1)], torch.ones(pos.shape, device=pos.device))
        params = {name: p.detach() for name, p in self.global_parameters().items()}

        def scores(user, task):
            return self.decision_scores(self.adapt(params, task), user, table)

        return vmap(scores)(user_vecs, support)
