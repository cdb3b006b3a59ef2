"""The bridge stage's per-epoch history: kept in the result line, laid end to end over TMCDR's stages, averaged
over the seeds that trained each epoch, and drawn in the report's training-curve figure."""

import pytest

from recbole_tmcdr.benchmark import report as report_mod
from recbole_tmcdr.benchmark import results as results_io
from recbole_tmcdr.benchmark import runner, worker
from recbole_tmcdr.benchmark.aggregate import history_frame, training_curves
from recbole_tmcdr.benchmark.spec import BenchmarkSpec
from tests.test_benchmark import fake_result, record


def history(scores, stage=None):
    return [{'epoch': e, 'loss': 1.0 / (e + 1), 'valid_score': s, 'steps': 10 * (e + 1),
             **({'stage': stage} if stage else {})} for e, s in enumerate(scores)]


def training(*histories):
    entries = [h for part in histories for h in part]
    return {'best_epoch': 0, 'epochs_run': len(entries), 'steps': 10, 'steps_at_best': 10, 'history': entries}


def test_the_result_line_keeps_the_chosen_trials_epoch_history(tmp_path, monkeypatch):
    def fake_run_recbole_cdr(model, dataset=None, config_file_list=None, config_dict=None, saved=True):
        lr = config_dict['learning_rate']
        return {**fake_result(lr, 0.5), 'training': training(history([lr, 2 * lr]))}

    monkeypatch.setattr('recbole_tmcdr.quick_start.run_recbole_cdr', fake_run_recbole_cdr)
    spec = BenchmarkSpec(scenarios=['ml_genre'], models=['EMCDR_MF'], seeds=[0], out=str(tmp_path / 'out'),
                         search_space={'EMCDR_MF': {'learning_rate': [0.001, 0.01, 0.005]}}).validate()
    line = worker.run_one(runner.plan(spec, str(tmp_path / 'out'), str(tmp_path / 'cache'))[0])
    assert line['chosen'] == {'learning_rate': 0.01}
    assert [(h['epoch'], h['loss'], h['valid_score']) for h in line['training']['history']] == [(0, 1.0, 0.01),
                                                                                               (1, 0.5, 0.02)]


def test_stages_are_laid_end_to_end():
    meta = training(history([0.1, 0.2], 'warm_start'), history([0.3, 0.4, 0.5], 'meta'))
    lines = [record('s', 'TMCDR_MF', 0, 0.8, 0.3, training=meta),
             record('s', 'EMCDR_MF', 0, 0.8, 0.3, training=training(history([0.1]))),  # an older line: no stage
             record('s', 'TargetPop', 0, 0.7, 0.2)]                                      # nothing validated
    frame = history_frame(report_mod.aggregate(lines))
    tmcdr = frame[frame['model'] == 'TMCDR_MF']
    assert list(tmcdr['stage']) == ['warm_start'] * 2 + ['meta'] * 3
    assert list(tmcdr['position']) == [0, 1, 2, 3, 4] and list(tmcdr['epoch']) == [0, 1, 0, 1, 2]
    assert list(frame.loc[frame['model'] == 'EMCDR_MF', 'stage']) == ['bridge']
    assert 'TargetPop' not in set(frame['model'])


def test_curves_average_the_seeds_that_trained_each_epoch():
    # seed 2 stops after two epochs: epochs 0-1 average 3 seeds, epoch 2 the other two
    scores = {0: [0.10, 0.20, 0.30], 1: [0.20, 0.30, 0.50], 2: [0.30, 0.40]}
    lines = [record('s', 'EMCDR_MF', seed, 0.8, 0.3, training=training(history(s))) for seed, s in scores.items()]
    curve = training_curves(report_mod.aggregate(lines)).loc[('s', 'EMCDR_MF')]
    assert list(curve['mean']) == pytest.approx([0.20, 0.30, 0.40])
    assert list(curve['seeds']) == [3, 3, 2] and set(curve['of']) == {3}


def test_report_links_the_training_curve_figure(tmp_path):
    for seed in range(3):
        for scenario in ('a', 'b', 'c'):
            for model, shift in (('EMCDR_MF', 0.0), ('TMCDR_MF', 0.01), ('TMCDRAdapted_MF', 0.02),
                                 ('TMCDRPaperStep_MF', 0.03)):  # every line style of the figure
                scores = [0.2 + shift, 0.25 + shift, 0.3][:2 + seed % 2]  # seed 1 trains an epoch more
                results_io.append_record(tmp_path / 'results.jsonl', record(scenario, model, seed, 0.8, 0.3,
                                                                            training=training(history(scores))))
            results_io.append_record(tmp_path / 'results.jsonl', record(scenario, 'TargetPop', seed, 0.7, 0.2))
    out = report_mod.write_report(str(tmp_path))
    assert out['training'] == str(tmp_path / 'training.png') and '![Training curves](training.png)' in out['markdown']
    from PIL import Image
    assert Image.open(tmp_path / 'training.png').size[0] == 1000  # readable at page width, like differences.png
    assert report_mod.written_files(out)[-1] == out['training']


def test_no_history_no_figure(tmp_path):
    results_io.append_record(tmp_path / 'results.jsonl', record('s', 'TargetPop', 0, 0.7, 0.2))
    out = report_mod.write_report(str(tmp_path))
    assert out['training'] is None and not (tmp_path / 'training.png').exists()
    assert 'Training curves' not in out['markdown']
