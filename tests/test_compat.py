"""One test per fix in ``recbole_tmcdr.compat.FIXES``, each showing what the fix repairs: the unpatched
toolkit code (``compat.ORIGINALS``, or the real numpy/torch) fails the same check. Plus: importing the plugin
changes neither numpy/torch nor recbole's base classes, and every fix has its test here."""

import importlib
import subprocess
import sys
import textwrap
import types

import numpy
import pandas as pd
import pytest
import torch

import recbole_tmcdr
from recbole_tmcdr import compat
from recbole_tmcdr.quick_start import build_config
from recbole_tmcdr.registry import get_model, get_trainer
from recbole.utils import init_seed
from recbole_cdr.data import create_dataset, data_preparation
from conftest import fast_config
from test_metrics import (EXPECTED_TEST, EXPECTED_VALID, SOURCE_GENRE, TARGET_AGE, TARGET_GENRE,
                          assert_results, handmade_config, write_handmade_scenario)


def _resolve(dotted):
    """'pkg.module.Class' -> the object (longest importable module prefix, then attributes)."""
    parts = dotted.split('.')
    for end in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:end]))
            break
        except ImportError:
            continue
    for name in parts[end:]:
        obj = getattr(obj, name)
    return obj


def without_fix(monkeypatch, key):
    """Put the toolkit's original ``key`` ('module.Class.attr') back for the rest of the test."""
    owner_path, name = key.rsplit('.', 1)
    monkeypatch.setattr(_resolve(owner_path), name, compat.ORIGINALS[key])


def run_targetpop(directory, **config):
    return recbole_tmcdr.run_recbole_cdr(model='TargetPop', config_dict=handmade_config(directory, **config))


def build_handmade(directory, **config):
    """Config, dataset and the three loaders of the hand-written scenario (no training)."""
    config = build_config('TargetPop', config_dict=handmade_config(directory, **config))
    dataset = create_dataset(config)
    return (config, dataset) + tuple(data_preparation(config, dataset))


# ----- import side effects -------------------------------------------------------------------------------

def test_import_changes_neither_numpy_nor_torch():
    assert not any(hasattr(numpy, name) for name in ('float', 'int', 'object', 'str', 'complex'))
    # numpy 2 has its own np.bool / np.long (numpy scalar types): still numpy's, not the builtins.
    assert numpy.bool is numpy.bool_ and numpy.long is not int
    assert torch.load is torch.serialization.load
    # The same in a fresh interpreter, before vs after the import.
    script = textwrap.dedent('''
        import types, numpy, torch

        def snapshot(module):  # attributes other than submodules (importing one adds it to its package)
            return {k: v for k, v in vars(module).items() if not isinstance(v, types.ModuleType)}

        before = snapshot(numpy), snapshot(torch)
        import recbole_tmcdr
        after = snapshot(numpy), snapshot(torch)
        for old, new in zip(before, after):
            assert old.keys() == new.keys() and all(new[k] is v for k, v in old.items() if k != '__loader__')
        assert not hasattr(numpy, 'float') and torch.load is torch.serialization.load
        try:
            numpy.float
        except AttributeError:
            print('ok')
    ''')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == 'ok', out.stderr[-2000:]


def test_recbole_base_classes_are_untouched():
    """The toolkit fixes patch recbole-cdr's classes / module names, never recbole's for single-domain code."""
    import recbole.data.dataloader as recbole_loaders
    import recbole.data.dataset as recbole_dataset
    import recbole.evaluator as recbole_evaluator
    import recbole.trainer as recbole_trainer
    assert recbole_trainer.Trainer.evaluate.__module__ == 'recbole.trainer.trainer'
    assert recbole_trainer.Trainer._neg_sample_batch_eval.__module__ == 'recbole.trainer.trainer'
    assert recbole_loaders.NegSampleEvalDataLoader.__module__ == 'recbole.data.dataloader.general_dataloader'
    assert sys.modules['recbole.data.utils'].NegSampleEvalDataLoader is recbole_loaders.NegSampleEvalDataLoader
    assert recbole_evaluator.Collector.eval_batch_collect.__module__ == 'recbole.evaluator.collector'
    assert recbole_dataset.Dataset._user_item_feat_preparation.__module__ == 'recbole.data.dataset.dataset'
    # numpy/torch replacements live only in the toolkit's module globals.
    assert sys.modules['recbole.evaluator.metrics'].np is not numpy
    assert sys.modules['recbole.trainer.trainer'].torch is not torch


def test_every_fix_has_a_test_and_apply_all_is_idempotent():
    tests = {name for name in globals() if name.startswith('test_')}
    for fix in compat.FIXES:
        assert f'test_{fix.__name__}' in tests, f'compat.{fix.__name__} has no test_{fix.__name__}'
    from recbole_cdr.trainer import CrossDomainTrainer
    evaluate, loader = CrossDomainTrainer.evaluate, sys.modules['recbole_cdr.data.utils'].NegSampleEvalDataLoader
    compat.apply_all()
    assert CrossDomainTrainer.evaluate is evaluate  # not wrapped twice
    assert sys.modules['recbole_cdr.data.utils'].NegSampleEvalDataLoader is loader


# ----- numpy 2 / torch >= 2.6 ----------------------------------------------------------------------------

def test_fix_numpy_removed_aliases(monkeypatch):
    metrics_module = sys.modules['recbole.evaluator.metrics']
    assert metrics_module.np.float is float and sys.modules['recbole.model.layers'].np.long is int
    from recbole.evaluator.metrics import NDCG
    pos_index, pos_len = numpy.array([[False, True, False]]), numpy.array([1])
    # NDCG of a single hit at rank 2: 1/log2(3) = 0.630930 at @2 and @3.
    assert NDCG.metric_info(None, pos_index, pos_len)[0] == pytest.approx([0, 0.630930, 0.630930], abs=1e-6)
    monkeypatch.setattr(metrics_module, 'np', numpy)  # the real numpy 2
    with pytest.raises(AttributeError, match='float'):
        NDCG.metric_info(None, pos_index, pos_len)


# ----- recbole-cdr: sampled evaluation -------------------------------------------------------------------

def test_fix_cdr_sampled_eval_loader_fields(tmp_path, monkeypatch):
    config, dataset, train_data, valid_data, test_data = build_handmade(tmp_path / 'a', eval_args={'mode': 'uni100'})
    for loader in (valid_data, test_data):
        assert isinstance(loader, compat.CrossDomainNegSampleEvalDataLoader)
        assert loader.label_field == 'target_label'
    interaction, row_idx, positive_u, positive_i = next(iter(valid_data))
    # c1 {t1, t3} then c2 {t2, t10} then c3 {t5}: each positive row, then its 100 negatives, labelled 1 / 0.
    assert positive_u.tolist() == [0, 0, 1, 1, 2] and len(interaction) == 5 * 101
    assert interaction['target_label'].sum() == 5
    labelled = interaction['target_item_id'][interaction['target_label'] == 1]
    assert sorted(labelled.tolist()) == sorted(positive_i.tolist())

    # Unpatched: the valid loader is built while config['LABEL_FIELD'] is still None.
    without_fix(monkeypatch, 'recbole_cdr.data.utils.NegSampleEvalDataLoader')
    _, _, _, valid_data, _ = build_handmade(tmp_path / 'b', eval_args={'mode': 'uni100'})
    assert valid_data.label_field is None
    with pytest.raises(TypeError, match='expected Tensor'):
        next(iter(valid_data))
    with pytest.raises(TypeError, match='expected Tensor'):
        run_targetpop(tmp_path / 'c', eval_args={'mode': 'uni100'})


def test_fix_cdr_trainer_eval_fields(tmp_path, monkeypatch):
    # Ranking metrics in sampled mode: known answers (see test_metrics.py for the arithmetic).
    result = run_targetpop(tmp_path / 'a', eval_args={'mode': 'uni100'})
    assert_results(result['best_valid_result'], EXPECTED_VALID)
    assert_results(result['test_result'], EXPECTED_TEST)

    # Value metrics read the labels through config['LABEL_FIELD'], which is None in a CDRConfig; it only
    # holds 'target_label' after CrossDomainDataloader overwrote it as a side effect (not when the
    # dataloaders come from disk, save_dataloaders). Simulate that: evaluation must still use the loader's.
    config, dataset, train_data, valid_data, test_data = build_handmade(
        tmp_path / 'b', eval_args={'mode': 'uni100'}, metrics=['AUC'], valid_metric='AUC')
    config['LABEL_FIELD'] = None
    model = get_model('TargetPop')(config, train_data.dataset)
    trainer = get_trainer(config['MODEL_TYPE'], 'TargetPop')(config, model)
    init_seed(config['seed'], True)
    auc = trainer.evaluate(valid_data, load_best_model=False)['auc']
    # The same sampled rows again (same seed): AUC over all (positive, negative) row pairs, ties 1/2.
    init_seed(config['seed'], True)
    rows = list(valid_data)
    labels = torch.cat([batch[0]['target_label'] for batch in rows])
    scores = model.item_count[torch.cat([batch[0]['target_item_id'] for batch in rows])]
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    expected = ((pos > neg).double() + 0.5 * (pos == neg).double()).mean().item()
    assert 0.5 < expected < 1 and auc == pytest.approx(expected, abs=1e-4)
    assert trainer.config is config and trainer.eval_collector.config is config  # the views are gone

    original_evaluate = compat.ORIGINALS['recbole_cdr.trainer.CrossDomainTrainer.evaluate']
    with pytest.raises(AttributeError, match='clone'):  # interaction[None] is an Interaction, not the labels
        original_evaluate(trainer, valid_data, load_best_model=False)
    without_fix(monkeypatch, 'recbole_cdr.trainer.CrossDomainTrainer.evaluate')
    # Ranking: scores are placed with interaction[config['ITEM_ID_FIELD']] = interaction[None].
    with pytest.raises(IndexError):
        run_targetpop(tmp_path / 'c', eval_args={'mode': 'uni100'})


@pytest.mark.parametrize('mode', ['uni100', 'uni99'])
def test_sampled_evaluation_of_synthetic_scenario_matches_full_ranking(tiny_scenario, mode):
    # ~48 target items and 8 positives per cold user: 8 x 99 uniform draws reach every non-positive item,
    # so sampled and full ranking see the same candidates.
    runs = {m: recbole_tmcdr.run_recbole_cdr(model='TargetPop', config_file_list=[tiny_scenario],
                                             config_dict=fast_config(eval_args={'mode': m}))
            for m in ('full', mode)}
    for key in ('best_valid_result', 'test_result'):
        assert dict(runs[mode][key]) == pytest.approx(dict(runs['full'][key]), abs=1e-4)
        assert set(runs[mode][key]) == {'uauc', 'gauc', 'ndcg@10', 'recall@10', 'hit@10', 'mrr@10'}


def test_sampled_evaluation_of_a_trained_plugin_model_matches_full_ranking(tiny_scenario):
    # One trained EMCDR_MF, evaluated on the cold test users through the full-ranking loader
    # (full_sort_predict) and through the uni100 loader (predict on the sampled candidates, scattered into
    # a -inf matrix): every non-positive item is drawn, so all metrics must agree.
    loaders = {}
    for mode in ('full', 'uni100'):
        config = build_config('EMCDR_MF', config_file_list=[tiny_scenario], config_dict=fast_config(
            eval_args={'mode': mode}, train_epochs=['SOURCE:2', 'TARGET:2', 'OVERLAP:2']))
        loaders[mode] = (config,) + tuple(data_preparation(config, create_dataset(config)))
    config, train_data, valid_data, test_data = loaders['full']
    model = get_model('EMCDR_MF')(config, train_data.dataset)
    trainer = get_trainer(config['MODEL_TYPE'], 'EMCDR_MF')(config, model)
    trainer.fit(train_data, valid_data, saved=False)
    full = trainer.evaluate(test_data, load_best_model=False)
    sampled = trainer.evaluate(loaders['uni100'][3], load_best_model=False)
    assert isinstance(loaders['uni100'][3], compat.CrossDomainNegSampleEvalDataLoader)
    assert dict(sampled) == pytest.approx(dict(full), abs=1e-4)
    assert 0 < full['uauc'] < 1


# ----- recbole-cdr: user/item feature files --------------------------------------------------------------

def test_fix_cdr_item_set_uses_iid_field(tmp_path, monkeypatch):
    config = build_config('TargetPop', config_dict=fast_config(
        **write_handmade_scenario(tmp_path / 'a', feature_files=True, extra_target_item='t11')))
    dataset = create_dataset(config)
    target = dataset.target_domain_dataset
    # t11 is only in tgt.item: it still gets a target id (PAD + t1..t11).
    assert dataset.num_overlap_item == 1 and dataset.num_target_only_item == 11 and target.item_num == 12
    assert target.token2id('target_item_id', 't11') == 3  # sorted tokens from id 1: t1, t10, t11, t2, ...
    assert dataset.num_source_only_item == 5 and dataset.num_total_item == 17

    # Without feature files the patched method computes exactly what the toolkit's does.
    plain = create_dataset(build_config('TargetPop', config_dict=fast_config(
        **write_handmade_scenario(tmp_path / 'b'))))
    ours = compat.calculate_user_item_from_both_domain(plain)
    ours_counts = (plain.num_overlap_user, plain.num_total_user, plain.num_overlap_item, plain.num_total_item)
    theirs = compat.ORIGINALS['recbole_cdr.data.dataset.CrossDomainDataset.calculate_user_item_from_both_domain'](
        plain)
    assert [dict(m) for m in ours] == [dict(m) for m in theirs]
    assert ours_counts == (plain.num_overlap_user, plain.num_total_user, plain.num_overlap_item,
                           plain.num_total_item)

    without_fix(monkeypatch, 'recbole_cdr.data.dataset.CrossDomainDataset.calculate_user_item_from_both_domain')
    with pytest.raises(KeyError, match='user_id'):
        create_dataset(config)


def _fake_single_dataset(with_user_feat):
    return types.SimpleNamespace(
        field2id_token={}, field2token_id={},
        inter_feat=pd.DataFrame({'item_id': ['b', 'a', 'b']}),
        user_feat=pd.DataFrame({'user_id': ['u1', 'u2'], 'age': ['x', 'y']}) if with_user_feat else None,
        item_feat=pd.DataFrame({'item_id': ['a', 'b', 'c'], 'genre': ['g1', 'g2', 'g3']}),
    )


def test_fix_cdr_remap_fields_item_feat(tmp_path, monkeypatch):
    mapping = {'[PAD]': 0, 'a': 1, 'b': 2, 'c': 3}
    fixed = _fake_single_dataset(with_user_feat=True)
    compat._remap_fields(fixed, ['item_id'], mapping)
    assert fixed.inter_feat['item_id'].tolist() == [2, 1, 2]
    assert fixed.item_feat['item_id'].tolist() == [1, 2, 3] and 'item_id' not in fixed.user_feat

    original = compat.ORIGINALS['recbole_cdr.data.dataset.CrossDomainSingleDataset._remap_fields']
    broken = _fake_single_dataset(with_user_feat=True)
    original(broken, ['item_id'], mapping)
    assert broken.item_feat['item_id'].tolist() == ['a', 'b', 'c']  # item table never remapped...
    assert broken.user_feat['item_id'].tolist() == [1, 2]  # ...its ids went into the user table
    with pytest.raises(TypeError):  # and with no .user file
        original(_fake_single_dataset(with_user_feat=False), ['item_id'], mapping)

    # End to end: a .item file (the source domain has no .user file).
    result = run_targetpop(tmp_path / 'a', feature_files=True, eval_args={'mode': 'uni100'})
    assert_results(result['best_valid_result'], EXPECTED_VALID)
    without_fix(monkeypatch, 'recbole_cdr.data.dataset.CrossDomainSingleDataset._remap_fields')
    with pytest.raises(TypeError, match='NoneType'):
        run_targetpop(tmp_path / 'b', feature_files=True, eval_args={'mode': 'uni100'})


def test_remap_fields_maps_tokens_as_the_toolkit_does():
    """The remap looks tokens up in a plain dict (one hash lookup per row); the result is the toolkit's
    ``map(lambda x: map_dict.get(x, x))``: ids (int dtype) when every token has one, the token kept otherwise."""
    from collections import ChainMap
    map_dict = ChainMap({'[PAD]': 0, 'a': 1, 'b': 2}, {'c': 3, 'a': 9})  # the first map wins, as in a lookup

    def toolkit(column):
        return column.map(lambda x: map_dict.get(x, x))

    for values in (['b', 'a', 'c', 'b'], ['b', 'unknown', 'c'], ['a', None, 'c']):
        column = pd.Series(values, dtype=object)
        pd.testing.assert_series_equal(compat.recbole_cdr._map_tokens(column, map_dict, dict(map_dict)),
                                       toolkit(column))
    assert compat.recbole_cdr._map_tokens(pd.Series(['c', 'a']), map_dict, dict(map_dict)).tolist() == [3, 1]


def _feature_alignment_errors(dataset):
    """Rows of the feature tables whose id or feature does not belong to the id of the row."""
    errors = []
    checks = [(dataset.target_domain_dataset, 'item_feat', 'target_item_id', 'target_genre', TARGET_GENRE),
              (dataset.target_domain_dataset, 'user_feat', 'target_user_id', 'target_age', TARGET_AGE),
              (dataset.source_domain_dataset, 'item_feat', 'source_item_id', 'source_genre', SOURCE_GENRE)]
    for domain, table, id_field, feature, truth in checks:
        feat = getattr(domain, table)
        for token, value in truth.items():
            row = domain.token2id(id_field, token)
            try:
                aligned = feat[id_field][row] == row and domain.id2token(feature, int(feat[feature][row])) == value
            except (KeyError, IndexError, ValueError):  # no row for that id at all
                aligned = False
            if not aligned:
                errors.append((table, token))
    return errors


@pytest.mark.parametrize('mode', ['full', 'uni100'])
def test_fix_cdr_feat_tables_by_id(tmp_path, monkeypatch, mode):
    config = build_config('TargetPop', config_dict=fast_config(**write_handmade_scenario(tmp_path, feature_files=True)))
    assert _feature_alignment_errors(create_dataset(config)) == []
    # With .item and .user files: the same known answers as without them.
    result = run_targetpop(tmp_path / 'a', feature_files=True, eval_args={'mode': mode})
    assert_results(result['best_valid_result'], EXPECTED_VALID)
    assert_results(result['test_result'], EXPECTED_TEST)

    without_fix(monkeypatch, 'recbole_cdr.data.dataset.CrossDomainSingleDataset._user_item_feat_preparation')
    assert len(_feature_alignment_errors(create_dataset(config))) > 0
    try:  # full ranking evaluates other users (it crashes here), sampled ranking scores other items
        broken = run_targetpop(tmp_path / 'b', feature_files=True, eval_args={'mode': mode})['best_valid_result']
    except TypeError:
        broken = None
    assert broken is None or abs(broken['uauc'] - EXPECTED_VALID['uauc']) > 0.01


def test_fix_cdr_id2token_by_id(tmp_path, monkeypatch):
    _, dataset, _, _, _ = build_handmade(tmp_path)
    for domain in (dataset.source_domain_dataset, dataset.target_domain_dataset):
        for field in (domain.uid_field, domain.iid_field):
            tokens = [t for t in domain.field2token_id[field] if t != '[PAD]']
            ids = domain.token2id(field, tokens)
            assert list(domain.id2token(field, ids)) == tokens  # arrays
            assert domain.id2token(field, int(ids[-1])) == tokens[-1]  # one id
            assert domain.id2token(field, torch.as_tensor(ids[:2])).tolist() == tokens[:2]
    target = dataset.target_domain_dataset
    original = compat.ORIGINALS['recbole_cdr.data.dataset.CrossDomainSingleDataset.id2token']
    tokens = [t for t in target.field2token_id[target.iid_field] if t != '[PAD]']
    wrong = [t for t in tokens if original(target, target.iid_field, target.token2id(target.iid_field, t)) != t]
    assert wrong  # the toolkit's list is in the remap dict's order, not by id


# ----- recbole-cdr: source-domain negatives ---------------------------------------------------------------

def test_fix_cdr_source_sampler_id_ranges(tmp_path, monkeypatch):
    from recbole_cdr.sampler import CrossDomainSourceSampler
    config, dataset, train_data, _, _ = build_handmade(tmp_path)
    source = dataset.source_domain_dataset
    source_items = set(source.inter_feat['source_item_id'].numpy().tolist())
    assert source_items == set(range(11, 16))  # [PAD] = 0, t1..t10 = 1..10 (target-only), s1..s5 = 11..15
    sampler = train_data.source_dataloader.sampler
    assert set(sampler.item_id_list.tolist()) == source_items and sampler.item_num == 6
    users = source.inter_feat['source_user_id'].numpy()
    negatives = sampler.sample_by_user_ids(users, source.inter_feat['source_item_id'].numpy(), 20)
    assert set(negatives.tolist()) <= source_items

    without_fix(monkeypatch, 'recbole_cdr.sampler.CrossDomainSourceSampler.__init__')
    original = CrossDomainSourceSampler(['train'], dataset, [source], 'uniform')
    assert 1 in original.item_id_list and 11 not in original.item_id_list  # t1 in, s1 out


def test_fix_recbole_graph_models_scipy_dok(monkeypatch):
    import scipy.sparse
    lightgcn = sys.modules['recbole.model.general_recommender.lightgcn']
    matrix = lightgcn.sp.dok_matrix((3, 3), dtype=numpy.float32)
    matrix._update({(0, 1): 1.0, (2, 0): 2.0})  # what LightGCN.get_norm_adj_mat does
    assert matrix[0, 1] == 1.0 and matrix[2, 0] == 2.0
    assert not hasattr(scipy.sparse.dok_matrix((1, 1)), '_update')  # scipy itself is untouched
    monkeypatch.setattr(lightgcn, 'sp', scipy.sparse)
    with pytest.raises(AttributeError, match='_update'):
        lightgcn.sp.dok_matrix((3, 3))._update({(0, 1): 1.0})


def test_fix_recbole_fill_nan_chained_assignment(monkeypatch):
    import logging
    import warnings
    from types import SimpleNamespace
    from recbole.data.dataset import Dataset
    from recbole.utils import FeatureType
    from recbole_tmcdr.compat import ORIGINALS

    def dataset_with_gaps():
        feat = pd.DataFrame({'item_id': [1.0, None, 3.0], 'price': [1.0, None, 3.0]})
        return SimpleNamespace(feat_name_list=['inter_feat'], inter_feat=feat, logger=logging.getLogger('test'),
                               field2type={'item_id': FeatureType.TOKEN, 'price': FeatureType.FLOAT})

    fixed = dataset_with_gaps()
    with warnings.catch_warnings():
        warnings.simplefilter('error', FutureWarning)
        Dataset._fill_nan(fixed)
    assert fixed.inter_feat['item_id'].tolist() == [1.0, 0.0, 3.0] and fixed.inter_feat['price'].tolist()[1] == 2.0
    with pytest.warns(FutureWarning, match='chained assignment'):  # RecBole's own method
        with warnings.catch_warnings():
            warnings.simplefilter('always', FutureWarning)
            ORIGINALS['recbole.data.dataset.Dataset._fill_nan'](dataset_with_gaps())


def test_fix_recbole_gauc_plain_float():
    """GAUC of one user whose positive ranks 2nd of 3 items: AUC 0.5; with values that round to a float32 long
    repr, the fixed metric is the plain rounded float, RecBole's own a numpy float32."""
    from types import SimpleNamespace
    import torch
    from recbole.evaluator.metrics import GAUC
    from recbole_tmcdr.compat import ORIGINALS

    metric = GAUC.__new__(GAUC)
    metric.decimal_place = 4
    # rec.meanrank rows: (sum of positive ranks, number of items, number of positives); 3 users
    data = SimpleNamespace(get=lambda key: torch.tensor([[2.0, 3.0, 1.0], [1.0, 4.0, 1.0], [3.0, 7.0, 1.0]]))
    fixed = metric.calculate_metric(data)['gauc']
    original = ORIGINALS['recbole.evaluator.metrics.GAUC.calculate_metric'](metric, data)['gauc']
    assert type(fixed) is float and repr(fixed) == repr(round(float(original), 4))
    assert type(original) is not float
