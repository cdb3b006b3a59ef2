"""Workarounds for recbole-cdr 0.1.0 bugs, each patched on a recbole-cdr class or module name only
(see :mod:`recbole_tmcdr.compat`)."""

import functools
import sys

import numpy
import pandas as pd
from recbole.data.dataloader.general_dataloader import NegSampleEvalDataLoader

from recbole_tmcdr.compat.core import ORIGINALS, _once, _remember

class ConfigWithOverrides:
    """A view of a RecBole ``Config`` that answers a few keys itself and forwards everything else
    (reads, writes, attributes) to the real config."""

    def __init__(self, config, overrides):
        self.__dict__['_config'] = config
        self.__dict__['_overrides'] = dict(overrides)

    def __getitem__(self, key):
        if key in self._overrides:
            return self._overrides[key]
        return self._config[key]

    def __setitem__(self, key, value):
        self._config[key] = value

    def __contains__(self, key):
        return key in self._overrides or key in self._config

    def __getattr__(self, name):
        try:
            config = self.__dict__['_config']
        except KeyError:
            raise AttributeError(name) from None
        return getattr(config, name)

    def __str__(self):
        return str(self._config)


def _domain_fields(dataset, label_field=None):
    """RecBole field-name keys -> the (domain-prefixed) names a cross-domain single dataset really uses,
    e.g. ``{'ITEM_ID_FIELD': 'target_item_id', 'LABEL_FIELD': 'target_label'}``."""
    fields = {
        'USER_ID_FIELD': getattr(dataset, 'uid_field', None),
        'ITEM_ID_FIELD': getattr(dataset, 'iid_field', None),
        'LABEL_FIELD': label_field or getattr(dataset, 'label_field', None),
        'NEG_PREFIX': getattr(dataset, 'neg_prefix', None),
    }
    return {key: value for key, value in fields.items() if value}


# ----- recbole-cdr: sampled evaluation ---------------------------------------------------------------------

class CrossDomainNegSampleEvalDataLoader(NegSampleEvalDataLoader):
    """recbole's ``NegSampleEvalDataLoader`` taking LABEL_FIELD / NEG_PREFIX from the domain dataset it
    iterates (``target_label``), not from the top-level config (``None`` in a CDRConfig)."""

    def _set_neg_sample_args(self, config, dataset, dl_format, neg_sample_args):
        super()._set_neg_sample_args(ConfigWithOverrides(config, _domain_fields(dataset)), dataset, dl_format,
                                     neg_sample_args)


@_once
def fix_cdr_sampled_eval_loader_fields():
    """recbole-cdr builds its sampled-evaluation loaders with recbole's ``NegSampleEvalDataLoader`` and the
    top-level config, whose ``LABEL_FIELD`` is ``None`` (the fields live in ``source_domain``/``target_domain``
    and are prefixed ``target_``). The valid loader is built before the train loader happens to overwrite
    ``config['LABEL_FIELD']``, so it writes its labels under the key ``None`` and its first batch fails
    (``TypeError: expected Tensor ... but got Interaction`` in ``cat_interactions``); the test loader only works
    by that accident. Only ``recbole_cdr.data.utils`` (its ``get_dataloader``) gets the fixed subclass."""
    import recbole_cdr.data.utils  # noqa: F401
    module = sys.modules['recbole_cdr.data.utils']
    _remember(module, 'NegSampleEvalDataLoader', 'recbole_cdr.data.utils.NegSampleEvalDataLoader')
    module.NegSampleEvalDataLoader = CrossDomainNegSampleEvalDataLoader


def eval_field_overrides(eval_data):
    """Field names of the domain an evaluation loader iterates (its dataset's, and its own label field)."""
    dataset = getattr(eval_data, 'dataset', None)
    fields = _domain_fields(dataset, label_field=getattr(eval_data, 'label_field', None))
    return {key: fields[key] for key in ('ITEM_ID_FIELD', 'LABEL_FIELD') if key in fields}


@_once
def fix_cdr_trainer_eval_fields():
    """recbole's ``Trainer._neg_sample_batch_eval`` places the sampled candidates' scores with
    ``interaction[config['ITEM_ID_FIELD']]`` and its ``Collector`` reads labels (value metrics) from
    ``interaction[config['LABEL_FIELD']]``; in a CDRConfig those top-level keys are ``None`` / not the
    evaluated domain's ``target_item_id`` / ``target_label``. ``CrossDomainTrainer.evaluate`` (inherited by
    the plugin's trainers) now runs with the trainer's and the collector's config seen through a view that
    answers these two keys with the evaluated loader's fields; recbole's ``Trainer`` is unchanged."""
    from recbole_cdr.trainer import CrossDomainTrainer
    _remember(CrossDomainTrainer, 'evaluate', 'recbole_cdr.trainer.CrossDomainTrainer.evaluate')
    toolkit_evaluate = ORIGINALS['recbole_cdr.trainer.CrossDomainTrainer.evaluate']

    @functools.wraps(toolkit_evaluate)
    def evaluate(self, eval_data, *args, **kwargs):
        overrides = eval_field_overrides(eval_data)
        collector = getattr(self, 'eval_collector', None)
        saved = self.config, getattr(collector, 'config', None)
        self.config = ConfigWithOverrides(saved[0], overrides)
        if collector is not None:
            collector.config = ConfigWithOverrides(saved[1], overrides)
        try:
            return toolkit_evaluate(self, eval_data, *args, **kwargs)
        finally:
            self.config = saved[0]
            if collector is not None:
                collector.config = saved[1]

    CrossDomainTrainer.evaluate = evaluate


# ----- recbole-cdr: user/item feature files ----------------------------------------------------------------

def _three_section_remap(source_ids, target_ids):
    """recbole-cdr's id layout: [PAD]=0, overlapping ids (sorted) from 1, then target-only, then
    source-only. Returns (source map, target map, n_overlap incl. PAD, n_source_only, n_target_only)."""
    from collections import ChainMap
    overlap = source_ids & target_ids
    source_only, target_only = list(source_ids - overlap), list(target_ids - overlap)
    overlap = list(overlap)
    for ids in (source_only, target_only):  # as the toolkit: drop NaN (missing values of a feature file)
        while numpy.nan in ids:
            ids.remove(numpy.nan)
    overlap.sort()
    source_only.sort()
    target_only.sort()
    n_overlap, n_source_only, n_target_only = len(overlap) + 1, len(source_only), len(target_only)
    overlap_map = dict(zip(overlap, range(1, n_overlap)))
    overlap_map['[PAD]'] = 0
    target_only_map = dict(zip(target_only, range(n_overlap, n_overlap + n_target_only)))
    source_only_map = dict(zip(source_only, range(n_overlap + n_target_only,
                                                  n_overlap + n_target_only + n_source_only)))
    return (ChainMap(overlap_map, source_only_map), ChainMap(overlap_map, target_only_map),
            n_overlap, n_source_only, n_target_only)


def _domain_ids(dataset, field, feat):
    ids = set(dataset.inter_feat[field])
    if feat is not None:
        ids |= set(feat[field])
    return ids


def calculate_user_item_from_both_domain(self):
    """``CrossDomainDataset.calculate_user_item_from_both_domain`` with the item sets read from the item
    id column of ``.item`` files (the toolkit reads ``item_feat[uid_field]``)."""
    source, target = self.source_domain_dataset, self.target_domain_dataset
    (source_user_map, target_user_map, self.num_overlap_user, self.num_source_only_user,
     self.num_target_only_user) = _three_section_remap(_domain_ids(source, source.uid_field, source.user_feat),
                                                       _domain_ids(target, target.uid_field, target.user_feat))
    self.num_total_user = self.num_overlap_user + self.num_source_only_user + self.num_target_only_user
    (source_item_map, target_item_map, self.num_overlap_item, self.num_source_only_item,
     self.num_target_only_item) = _three_section_remap(_domain_ids(source, source.iid_field, source.item_feat),
                                                       _domain_ids(target, target.iid_field, target.item_feat))
    self.num_total_item = self.num_overlap_item + self.num_source_only_item + self.num_target_only_item
    return source_user_map, source_item_map, target_user_map, target_item_map


@_once
def fix_cdr_item_set_uses_iid_field():
    """``CrossDomainDataset.calculate_user_item_from_both_domain`` collects the item ids of a loaded ``.item``
    file as ``item_feat[uid_field]``: ``KeyError: 'user_id'`` as soon as a domain has an item file in
    ``load_col``. Replaced (on that recbole-cdr class only) by the same computation using the item id field."""
    from recbole_cdr.data.dataset import CrossDomainDataset
    _remember(CrossDomainDataset, 'calculate_user_item_from_both_domain',
              'recbole_cdr.data.dataset.CrossDomainDataset.calculate_user_item_from_both_domain')
    CrossDomainDataset.calculate_user_item_from_both_domain = calculate_user_item_from_both_domain


def _map_tokens(column, map_dict, lookup):
    """``column`` with each token replaced by its id (``lookup``: ``map_dict`` as a plain dict), a token without
    one kept, as the toolkit's ``column.map(lambda x: map_dict.get(x, x))`` gives it. One hash lookup per row
    instead of a Python call into a ``ChainMap`` (which walks its maps in Python: 5 of the 17 s that building a
    scenario of 2 x 200k rows took)."""
    ids = column.map(lookup)
    if ids.isna().any():  # a token without an id, or a missing value: the toolkit's own mapping keeps it
        return column.map(lambda x: map_dict.get(x, x))
    return ids


def _remap_fields(self, field_names, map_dict):
    """``CrossDomainSingleDataset._remap_fields`` writing each remapped column back into the table it came
    from (the toolkit writes the item table's column into ``user_feat``)."""
    lookup = dict(map_dict)
    for field_name in field_names:
        self.field2id_token[field_name] = list(map_dict.keys())
        self.field2token_id[field_name] = map_dict
        for feat in (self.inter_feat, self.user_feat, self.item_feat):
            if feat is not None and field_name in feat.columns:
                feat[field_name] = _map_tokens(feat[field_name], map_dict, lookup)


@_once
def fix_cdr_remap_fields_item_feat():
    """``CrossDomainSingleDataset._remap_fields`` does ``self.user_feat[f] = self.item_feat[f].map(...)``:
    with an ``.item`` file and no ``.user`` file that is a ``TypeError`` (``user_feat`` is ``None``); with both,
    the item ids land in a user-table column and the item table keeps its raw tokens, so every item feature
    is looked up for the wrong item (all missing after the merge by id). Patched on that class only."""
    from recbole_cdr.data.dataset import CrossDomainSingleDataset
    _remember(CrossDomainSingleDataset, '_remap_fields', 'recbole_cdr.data.dataset.CrossDomainSingleDataset._remap_fields')
    CrossDomainSingleDataset._remap_fields = _remap_fields


def _user_item_feat_preparation(self):
    """``CrossDomainSingleDataset._user_item_feat_preparation`` laying the user/item feature tables out by
    id (row ``i`` = id ``i``, ``0`` = padding, up to the domain's largest id), as RecBole's ``join`` indexes
    them. The toolkit orders the rows by the remap dict's iteration order (a ``ChainMap``: source-only or
    target-only ids first, ``[PAD]`` last)."""
    for feat_name, field in (('user_feat', self.uid_field), ('item_feat', self.iid_field)):
        feat = getattr(self, feat_name)
        if feat is None:
            continue
        by_id = pd.DataFrame({field: numpy.arange(max(self.field2token_id[field].values()) + 1)})
        setattr(self, feat_name, pd.merge(by_id, feat, on=field, how='left'))


@_once
def fix_cdr_feat_tables_by_id():
    """recbole-cdr orders a domain's ``user_feat`` / ``item_feat`` rows by its remap ``ChainMap``'s key
    order, not by id, while RecBole's ``Dataset.join`` reads the row at position ``id``. With a ``.user`` or
    ``.item`` file loaded, every joined feature belongs to another user/item, and the joined table's own id
    column overwrites the batch's ids: a sampled evaluation scores other items than it samples, a full
    ranking evaluates other users' positives. Patched on ``CrossDomainSingleDataset`` only."""
    from recbole_cdr.data.dataset import CrossDomainSingleDataset
    _remember(CrossDomainSingleDataset, '_user_item_feat_preparation',
              'recbole_cdr.data.dataset.CrossDomainSingleDataset._user_item_feat_preparation')
    CrossDomainSingleDataset._user_item_feat_preparation = _user_item_feat_preparation


# ----- recbole-cdr: source-domain negative sampling --------------------------------------------------------

@_once
def fix_cdr_source_sampler_id_ranges():
    """``CrossDomainSourceSampler`` takes ``num_overlap_item + 1`` as the end of the overlapping id block, but
    ``num_overlap_item`` already counts ``[PAD]``: its uniform negatives for the source domain include the
    first id after the overlap block (a TARGET-only item whenever the target has its own items) and never
    the first source-only item (same off-by-one for users and for the "user used every item" check).
    The ranges are recomputed after the toolkit's ``__init__``, on that recbole-cdr class only."""
    from recbole_cdr.sampler import CrossDomainSourceSampler
    _remember(CrossDomainSourceSampler, '__init__', 'recbole_cdr.sampler.CrossDomainSourceSampler.__init__')
    toolkit_init = ORIGINALS['recbole_cdr.sampler.CrossDomainSourceSampler.__init__']

    @functools.wraps(toolkit_init)
    def __init__(self, *args, **kwargs):
        toolkit_init(self, *args, **kwargs)
        # The toolkit stored num_overlap_* + 1; num_overlap_* (which includes [PAD]) is where the block ends.
        self.overlapped_item_num -= 1
        self.overlapped_user_num -= 1
        self.item_num = self.overlapped_item_num + self.source_only_item_num
        self.item_id_list = numpy.concatenate([
            numpy.arange(1, self.overlapped_item_num),
            numpy.arange(self.overlapped_item_num + self.target_only_item_num, self.total_item_num)])
        self.user_id_list = numpy.concatenate([
            numpy.arange(1, self.overlapped_user_num),
            numpy.arange(self.overlapped_user_num + self.target_only_user_num, self.total_user_num)])
        used = self.used_ids.values() if isinstance(self.used_ids, dict) else [self.used_ids]
        if any(len(items) + 1 == self.item_num for phase_used in used for items in phase_used):
            raise ValueError('Some users have interacted with all source items, which we can not sample negative '
                             'items for them. Please set `user_inter_num_interval` to filter those users.')

    CrossDomainSourceSampler.__init__ = __init__


def id2token(self, field, ids):
    """``Dataset.id2token`` for the id fields recbole-cdr remaps: their ``field2id_token`` is the remap dict's
    keys in its iteration order (a list, not indexed by id), so the toolkit returns another token for most ids
    and fails on arrays. Tokens are read through ``field2token_id`` inverted; other fields as the toolkit does."""
    if not isinstance(self.field2id_token.get(field), list):
        return ORIGINALS['recbole_cdr.data.dataset.CrossDomainSingleDataset.id2token'](self, field, ids)
    token_id = self.field2token_id[field]
    by_id = numpy.empty(max(token_id.values()) + 1, dtype=object)
    by_id[list(token_id.values())] = list(token_id.keys())
    return by_id[numpy.asarray(ids)] if numpy.ndim(ids) else by_id[int(ids)]


@_once
def fix_cdr_id2token_by_id():
    """``CrossDomainSingleDataset.id2token`` of a remapped id field maps ids to the wrong tokens (see
    :func:`id2token`): e.g. the item tokens of a recommendation list. Patched on that recbole-cdr class only."""
    from recbole_cdr.data.dataset import CrossDomainSingleDataset
    _remember(CrossDomainSingleDataset, 'id2token', 'recbole_cdr.data.dataset.CrossDomainSingleDataset.id2token')
    CrossDomainSingleDataset.id2token = id2token
