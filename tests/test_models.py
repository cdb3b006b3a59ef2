"""Base-model losses (known answers), the EMCDR family, the pre-training cache."""

import math

import pytest
import torch

from recbole_tmcdr.model.base_models import BASE_MODELS, make_base_model
from recbole_tmcdr.phases import Phase

from conftest import Pipeline
from synthetic import write_generic_scenario

PHASES = ["SOURCE:3", "TARGET:3", "OVERLAP:3"]

# u = (1, 0); positive v = (0.5, 1); negatives (2, 0) and (-1, 0)  ->  dot scores: pos 0.5, neg 2 and -1
USER = torch.tensor([[1.0, 0.0]])
POS = torch.tensor([[0.5, 1.0]])
NEG = torch.tensor([[[2.0, 0.0], [-1.0, 0.0]]])
softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731


@pytest.mark.parametrize('name, expected', [
    # MF: -log s(0.5) - log(1 - s(2)) - log(1 - s(-1))
    ('MF', softplus(-0.5) + softplus(2.0) + softplus(-1.0)),
    # BPR: -log s(0.5 - 2) - log s(0.5 + 1)
    ('BPR', softplus(2.0 - 0.5) + softplus(-1.0 - 0.5)),
    # ListRank-MF: -log softmax(sigmoid([0.5, 2, -1]))[0]
    ('ListRankMF', -sigmoid(0.5) + math.log(sum(math.exp(sigmoid(s)) for s in (0.5, 2.0, -1.0)))),
    # CML, margin 0.5: d(u,pos) = 0.25 + 1 = 1.25, d(u,neg) = 1 and 4 -> [0.5 + 1.25 - 1]+ + [0.5 + 1.25 - 4]+ = 0.75
    ('CML', 0.75),
])
def test_base_loss_known_answer(name, expected):
    model = BASE_MODELS.get(name)({'cml_margin': 0.5})
    assert model.loss(USER, POS, NEG).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('name', ['MF', 'BPR', 'ListRankMF', 'CML'])
def test_full_scores_match_pairwise_scores(name):
    model = make_base_model({'base_model': name, 'cml_margin': 0.5})
    users, items = torch.randn(3, 5), torch.randn(7, 5)
    full = model.full_scores(users, items)
    pairwise = model.score(users.unsqueeze(1), items.unsqueeze(0))
    assert torch.allclose(full, pairwise, atol=1e-5)


def snapshot_embeddings(model):
    return {name: p.detach().clone() for name, p in model.named_parameters() if 'embedding' in name}


def run_recording_bridge_phase(pipeline_obj):
    """Fit, recording the embeddings and the bridge just before and after the bridge phase."""
    trainer, record = pipeline_obj.trainer, {}
    fit_bridge = trainer._fit_bridge

    def recording(*args, **kwargs):
        record['before'] = snapshot_embeddings(trainer.model)
        record['bridge_before'] = [p.detach().clone() for p in trainer.model.bridge.parameters()]
        fit_bridge(*args, **kwargs)
        record['after'] = snapshot_embeddings(trainer.model)
    trainer._fit_bridge = recording
    pipeline_obj.fit()
    return record


@pytest.mark.parametrize('model_name', ['EMCDR_MF', 'TMCDR_MF'])
def test_bridge_phase_trains_only_the_bridge(pipeline, model_name):
    run = pipeline(model_name, train_epochs=PHASES, meta_group_size=8, meta_groups_per_batch=4)
    record = run_recording_bridge_phase(run)
    for name, before in record['before'].items():
        assert torch.equal(before, record['after'][name]), f'{name} changed during the bridge phase'
    moved = [not torch.equal(b, a) for b, a in zip(record['bridge_before'], run.model.bridge.parameters())]
    assert any(moved), 'the bridge did not train'


def pretrain_files(tmp_path):
    directory = tmp_path / 'cache' / 'pretrained'
    return sorted(directory.glob('*.pt')) if directory.exists() else []


def test_pretrained_embeddings_are_cached_and_shared(pipeline, tmp_path):
    first = pipeline('EMCDR_MF', train_epochs=PHASES)
    first.fit()
    files = pretrain_files(tmp_path)
    assert len(files) == 2  # source + target
    mtimes = [f.stat().st_mtime_ns for f in files]

    second = pipeline('TMCDR_MF', train_epochs=PHASES, meta_group_size=8)  # same base model and settings: hit
    second.trainer._fit_bridge = lambda *a, **k: None
    second.fit()
    assert pretrain_files(tmp_path) == files and [f.stat().st_mtime_ns for f in files] == mtimes
    for phase in (Phase.SOURCE, Phase.TARGET):
        for name, module in first.model.pretrained_modules(phase).items():
            assert torch.equal(module.weight, second.model.pretrained_modules(phase)[name].weight)

    other = pipeline('EMCDR_MF', train_epochs=PHASES, embedding_size=8)  # different hyperparameter: miss
    other.fit()
    assert len(pretrain_files(tmp_path)) == 4

    forced = pipeline('EMCDR_MF', train_epochs=PHASES, force_pretrain=True)
    forced.fit()
    assert [f.stat().st_mtime_ns for f in files] != mtimes


@pytest.mark.parametrize('model_name', ['EMCDR_MF', 'TMCDR_MF'])
def test_a_run_on_cached_pretraining_equals_a_run_that_pretrains(pipeline, tmp_path, model_name):
    settings = dict(train_epochs=PHASES, meta_group_size=8, meta_groups_per_batch=2)
    fresh = pipeline(model_name, **settings)
    fresh.fit()
    assert len(pretrain_files(tmp_path)) == 2
    cached = pipeline(model_name, **settings)
    cached.fit()
    assert cached.trainer.best_valid_result == fresh.trainer.best_valid_result
    for a, b in zip(fresh.model.bridge.parameters(), cached.model.bridge.parameters()):
        # EMCDR: bit-identical; TMCDR's vmapped meta-gradients differ in the last bits (~1e-8)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7) and (model_name != 'EMCDR_MF' or torch.equal(a, b))


def test_corrupt_pretrain_cache_is_rebuilt(pipeline, tmp_path, caplog):
    pipeline('EMCDR_MF', train_epochs=PHASES).fit()
    for f in pretrain_files(tmp_path):
        f.write_bytes(f.read_bytes()[:100])  # truncated
    again = pipeline('EMCDR_MF', train_epochs=PHASES)
    again.fit()
    assert all(f.stat().st_size > 1000 for f in pretrain_files(tmp_path))


def test_emcdr_beats_a_random_mapping_on_a_linear_relation(tmp_path):
    raw = tmp_path / 'linear'
    raw.mkdir()
    scenario = write_generic_scenario(raw, name='linear', n_users=400, per_user=10, dim=4, seed=3)
    settings = dict(embedding_size=8, pretrain_learning_rate=0.01, learning_rate=0.01, stopping_step=5)
    trained = Pipeline('EMCDR_MF', [scenario], train_epochs=["SOURCE:40", "TARGET:40", "OVERLAP:60"], **settings)
    trained.fit()
    random_map = Pipeline('EMCDR_MF', [scenario], train_epochs=["SOURCE:40", "TARGET:40", "OVERLAP:0"], **settings)
    random_map.fit()
    trained_auc = trained.trainer.evaluate(trained.test_data, load_best_model=False)['uauc']
    random_auc = random_map.trainer.evaluate(random_map.test_data, load_best_model=False)['uauc']
    assert trained_auc > random_auc + 0.05, (trained_auc, random_auc)


def test_mfori_pretrains_on_overlapping_users_only(pipeline):
    run = pipeline('EMCDR_MFori', train_epochs=["SOURCE:2", "TARGET:2", "OVERLAP:1"])
    before = snapshot_embeddings(run.model)
    run.fit()
    n_overlap = run.model.overlapped_num_users
    for table in ('source_user_embedding.weight', 'target_user_embedding.weight'):
        changed = (before[table] != run.model.state_dict()[table]).any(dim=1)
        assert not changed[n_overlap:].any(), f'{table}: a non-overlapping user was trained'
        assert changed[1:n_overlap].any()


def test_non_finite_loss_names_phase_epoch_step_and_learning_rate(pipeline):
    run = pipeline('EMCDR_MF', train_epochs=PHASES, learning_rate=0.003)
    run.model.bridge_loss = lambda interaction: torch.tensor(float('nan'), requires_grad=True)
    with pytest.raises(FloatingPointError, match=r'phase OVERLAP, epoch 0, step 1, learning rate 0.003'):
        run.fit()
