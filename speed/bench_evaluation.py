"""Figure 4: full-ranking evaluation of the cold test users against RecBole's own full-sort evaluation.

Ours: ``trainer.evaluate(test_data, load_best_model=False)`` of TMCDR_MF (cold test users scored with
f_theta(u^s) against every target item). RecBole: ``Trainer.evaluate`` of ``BPR`` on the same test rows
(same users, same items, same metrics and evaluation batch size; see recbole_reference.py).
"""

from speed.common import Figure, best, fmt_times, interleaved

LIMIT = 1.0


def run(ctx):
    from recbole_tmcdr.phases import Phase
    pipe = ctx.tmcdr_pipeline()
    pipe.enter_phase(Phase.OVERLAP)
    ref = ctx.recbole_bpr(pipe.config)
    ours_users = len(pipe.test_data.uid_list)
    ref_users = len(ref.test_data.uid_list)
    ours_items, ref_items = pipe.model.target_num_items, ref.model.n_items

    times = interleaved({
        'ours_TMCDR_MF': lambda: pipe.trainer.evaluate(pipe.test_data, load_best_model=False),
        'recbole_BPR': lambda: ref.trainer.evaluate(ref.test_data, load_best_model=False),
    }, rounds=ctx.rounds(25))
    t = best(times)
    ratio = t['ours_TMCDR_MF'] / t['recbole_BPR']
    details = {'seconds (min over rounds)': fmt_times(times), 'test users (ours, RecBole)': (ours_users, ref_users),
               'items (ours, RecBole)': (ours_items, ref_items), 'metrics': list(pipe.config['metrics']),
               'same users and items': ours_users == ref_users and ours_items == ref_items}
    return [Figure('4', 'full-ranking evaluation of cold test users / RecBole BPR evaluate', ratio, 'x',
                   f'<= {LIMIT}x', ratio <= LIMIT, details)]
