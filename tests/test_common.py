"""One common check suite over EVERY registered model (scikit-learn style): it trains and evaluates on tiny
data, is deterministic for a seed, and its best checkpoint round-trips through RecBole's load path."""

import pytest
import torch

from recbole_tmcdr import run_recbole_cdr
from recbole_tmcdr.registry import MODELS

from conftest import Pipeline, fast_config

# Few epochs, small tasks: the point is the contract, not the quality.
TINY = dict(train_epochs=["SOURCE:2", "TARGET:2", "OVERLAP:2"], embedding_size=8, meta_group_size=8,
            meta_groups_per_batch=4)
METRICS = {'uauc', 'gauc', 'ndcg@10', 'recall@10', 'hit@10', 'mrr@10'}


def tiny_settings(model, scenario=None):
    settings = dict(TINY)
    if model == 'ContentGenre' and scenario is not None:  # item content: the genres file written beside the tiny scenario
        settings['content_item_file'] = str(scenario.parent / 'genres.csv')
    own_phases = [p for p in (MODELS.get(model).__dict__.get('tiny_train_epochs') or [])]
    if own_phases:
        settings['train_epochs'] = own_phases
    if model == 'KRouter':  # its candidates train in their own phases: two of them, briefly
        settings.update(router_candidates=['TargetPop', 'EMCDR_MF'],
                        router_candidate_settings={'EMCDR_MF': {'train_epochs': settings['train_epochs']}})
    if model in ('TargetPop', 'ContentGenre', 'KRouter'):
        settings.pop('train_epochs')
    return settings


@pytest.mark.parametrize('model', MODELS.names())
def test_model_trains_evaluates_and_is_deterministic(model, tiny_scenario):
    results = [run_recbole_cdr(model=model, config_file_list=[tiny_scenario], saved=False,
                               config_dict=fast_config(force_pretrain=True, **tiny_settings(model, tiny_scenario)))
               for _ in range(2)]
    for result in results:
        assert METRICS <= set(result['test_result']) and METRICS <= set(result['best_valid_result'])
        assert all(0.0 <= float(v) <= 1.0 for v in result['test_result'].values())
    assert dict(results[0]['test_result']) == dict(results[1]['test_result'])
    assert dict(results[0]['best_valid_result']) == dict(results[1]['best_valid_result'])


@pytest.mark.parametrize('model', MODELS.names())
def test_best_checkpoint_round_trips(model, tiny_scenario):
    run = Pipeline(model, [tiny_scenario], **tiny_settings(model, tiny_scenario))
    run.fit(saved=True)
    expected = run.trainer.evaluate(run.test_data, load_best_model=False)
    with torch.no_grad():
        for p in run.model.parameters():
            p.add_(0.5)
    assert run.trainer.evaluate(run.test_data, load_best_model=True) == expected
