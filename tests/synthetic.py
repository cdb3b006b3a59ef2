"""Tiny deterministic two-domain data sets for the tests (no file from ../shared is needed)."""

import numpy as np
import yaml


def latent_two_domain(n_users=120, n_source_items=60, n_target_items=50, per_user=8, dim=4, seed=0,
                      n_source_only=10, n_target_only=10):
    """Users share a latent taste z; the target taste is a fixed linear function of the source taste, so a
    good mapping from source to target embeddings exists. Returns (source_rows, target_rows) of (user, item)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_users + n_source_only + n_target_only, dim))
    relation = rng.normal(size=(dim, dim))
    src_items = rng.normal(size=(n_source_items, dim))
    tgt_items = rng.normal(size=(n_target_items, dim))

    def pick(taste, items, k):
        scores = taste @ items.T + 0.3 * rng.gumbel(size=len(items))
        return np.argsort(-scores)[:k]

    source, target = [], []
    overlap = range(n_users)
    source_users = list(overlap) + list(range(n_users, n_users + n_source_only))
    target_users = list(overlap) + list(range(n_users + n_source_only, n_users + n_source_only + n_target_only))
    for u in source_users:
        source += [(f'u{u}', f's{i}') for i in pick(z[u], src_items, per_user)]
    for u in target_users:
        target += [(f'u{u}', f't{i}') for i in pick(z[u] @ relation, tgt_items, per_user)]
    return source, target


def hash_genre(item):
    """A deterministic genre of a synthetic item id (s12, t3, ...)."""
    return int(item[1:]) % 5


def write_generic_scenario(directory, name='tiny', **kwargs):
    """CSV files + a scenario YAML (generic type) in ``directory``; returns the YAML path."""
    source, target = latent_two_domain(**kwargs)
    for file_name, rows in (('source.csv', source), ('target.csv', target)):
        with open(directory / file_name, 'w') as f:
            f.write('user,item\n')
            f.writelines(f'{u},{i}\n' for u, i in rows)
    config = {
        'scenario': {'type': 'generic', 'name': name, 'source_file': str(directory / 'source.csv'),
                     'target_file': str(directory / 'target.csv'), 'columns': {'user': 'user', 'item': 'item'}},
    }
    with open(directory / 'genres.csv', 'w') as f:  # item content, for the content-based models
        f.write('item,genres\n')
        f.writelines(f'{i},g{hash_genre(i)}|h{len(i) % 2}\n' for i in sorted({i for _, i in source + target}))
    path = directory / f'{name}.yaml'
    path.write_text(yaml.safe_dump(config))
    return path
