"""What a running benchmark shows (main process): an overall bar (runs done / total) and one bar per active
run (trials of its search), fed the workers' events (see :mod:`recbole_tmcdr.benchmark.worker`)."""

import sys

from tqdm.auto import tqdm


class ProgressDisplay:
    """An overall bar (runs done / total) and one bar per active run (trials of its search)."""

    def __init__(self, total, done, slots, enabled=None):
        self.enabled = enabled
        self.overall = tqdm(total=total, initial=done, desc='benchmark', unit='run', position=0,
                            dynamic_ncols=True, disable=None if enabled is None else not enabled)
        self.slots = list(range(1, max(1, slots) + 1))
        self.bars = {}

    def event(self, event):
        run_id = event.get('run_id')
        if event['event'] == 'start':
            position = self.slots.pop(0) if self.slots else len(self.bars) + 1
            bar = tqdm(total=event['n_trials'], desc=run_id, unit='trial', position=position, leave=False,
                       dynamic_ncols=True, disable=self.overall.disable)
            self.bars[run_id] = (bar, position)
        elif run_id in self.bars:
            bar = self.bars[run_id][0]
            if event['event'] == 'trial_start':
                params = ', '.join(f'{k}={v}' for k, v in event['params'].items())
                bar.set_postfix_str(f"trial {event['index'] + 1}{': ' + params if params else ''}")
            elif event['event'] == 'trial_end':
                bar.update(1)

    def finish(self, run_id, message):
        if run_id in self.bars:
            bar, position = self.bars.pop(run_id)
            bar.close()
            self.slots.insert(0, position)
            self.slots.sort()
        self.overall.update(1)
        tqdm.write(message, file=sys.stderr)

    def close(self):
        for bar, _ in self.bars.values():
            bar.close()
        self.overall.close()
