"""``embedding_updates: row_sparse``: Adam with lazy updates of the tables' row-sparse gradients."""

import pytest
import torch

from recbole_tmcdr import run_recbole_cdr
from recbole_tmcdr.trainer.row_sparse_adam import RowSparseAdam
from recbole_tmcdr.validation import ConfigError

from conftest import fast_config


def train(sparse, batches, weight_decay=0.0, rows=6, dim=3):
    torch.manual_seed(0)
    table = torch.nn.Embedding(rows, dim, sparse=sparse)
    optimizer = (RowSparseAdam if sparse else torch.optim.Adam)(table.parameters(), lr=0.1, weight_decay=weight_decay)
    for ids in batches:
        optimizer.zero_grad()
        (table(torch.tensor(ids)) ** 3).sum().backward()
        optimizer.step()
    return table.weight.detach()


@pytest.mark.parametrize('weight_decay', [0.0, 0.1])
def test_equals_adam_when_every_row_is_looked_up(weight_decay):
    batches = [[0, 1, 2, 3, 4, 5, 5], [5, 4, 3, 2, 1, 0], [2, 2, 0, 1, 3, 4, 5]]  # repeats sum their gradients
    assert torch.allclose(train(True, batches, weight_decay), train(False, batches, weight_decay), atol=1e-6)


def test_rows_not_looked_up_keep_their_values_and_moments():
    initial = train(False, [])
    after = train(True, [[0, 1], [1, 2], [0, 1]])
    assert torch.equal(after[3:], initial[3:]) and not torch.equal(after[:3], initial[:3])
    dense = train(False, [[0, 1], [1, 2], [0, 1]])
    assert not torch.equal(dense[2], after[2])  # dense Adam keeps moving row 2 on its decaying moments


def test_dense_gradients_get_torchs_adam():
    results = []
    for optimizer_class in (RowSparseAdam, torch.optim.Adam):
        torch.manual_seed(0)
        layer = torch.nn.Linear(4, 2)
        optimizer = optimizer_class(layer.parameters(), lr=0.05, weight_decay=0.01)
        for _ in range(3):
            optimizer.zero_grad()
            layer(torch.ones(5, 4)).pow(2).sum().backward()
            optimizer.step()
        results.append([p.detach().clone() for p in layer.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*results))


@pytest.mark.parametrize('model, phases', [('EMCDR_MF', ["SOURCE:2", "TARGET:2", "OVERLAP:2"]), ('CMF', ["BOTH:2"]),
                                           ('CST', ["SOURCE:2", "TARGET:2"])])
def test_row_sparse_runs_train_and_are_deterministic(model, phases, tiny_scenario):
    settings = fast_config(train_epochs=phases, embedding_updates='row_sparse', force_pretrain=True)
    results = [run_recbole_cdr(model=model, config_file_list=[tiny_scenario], config_dict=settings, saved=False)
               for _ in range(2)]
    assert dict(results[0]['test_result']) == dict(results[1]['test_result'])
    assert 0.0 <= results[0]['test_result']['uauc'] <= 1.0


@pytest.mark.parametrize('settings, message', [({'learner': 'sgd'}, 'learner: adam'),
                                               ({'clip_grad_norm': {'max_norm': 1.0}}, 'clip_grad_norm')])
def test_row_sparse_needs_adam_without_clipping(tiny_scenario, settings, message):
    with pytest.raises(ConfigError, match=message):
        run_recbole_cdr(model='EMCDR_MF', config_file_list=[tiny_scenario], saved=False,
                        config_dict=fast_config(embedding_updates='row_sparse', **settings))
