"""What a running benchmark shows (main process): where each running trial is, by phase and epoch.

On a terminal, one bar counts the runs and names, for each running run, its trial and the phase and epoch its
trainer is in::

    benchmark:   4%|▍         | 3/80 runs [03:12<1:22:05], ml_genre/TMCDR_MF/seed0 (trial 2/8, META epoch 12/100)

Elsewhere (a log file, a batch job), a one-line status every ``status_interval`` seconds::

    [12:03:04] 3/80 runs done, running: ml_genre/TMCDR_MF/seed0 (trial 2/8, META epoch 12/100)

Each finished or failed run prints one line in both cases. The display is fed the workers' events (see
:mod:`recbole_tmcdr.benchmark.worker`).
"""

import sys
import time
from datetime import datetime

from tqdm.auto import tqdm

DEFAULT_STATUS_INTERVAL = 60  # seconds between two status lines when the output is not a terminal


def stage_label(phase, stage):
    """``SOURCE`` / ``TARGET`` while pre-training, the phase for a plain bridge (``OVERLAP``, ``BOTH``), the
    stage of a staged bridge (TMCDR: ``WARM_START``, ``META``)."""
    return str(stage).upper() if stage not in (None, 'bridge') else str(phase)


class RunState:
    """Where one running run is: its trial, and the phase and epoch of that trial's training."""

    def __init__(self, run_id, n_trials):
        self.run_id, self.n_trials = run_id, n_trials
        self.trial, self.label, self.epoch, self.epochs = 0, None, None, None

    def text(self):
        """``ml_genre/TMCDR_MF/seed0 (trial 2/8, META epoch 12/100)``; no trial when the run has one, no phase
        before the first epoch."""
        parts = [f'trial {self.trial + 1}/{self.n_trials}'] if self.n_trials > 1 else []
        if self.label:
            parts.append(f'{self.label} epoch {self.epoch}' + (f'/{self.epochs}' if self.epochs else ''))
        return self.run_id + (f" ({', '.join(parts)})" if parts else '')


class ProgressDisplay:
    """A bar on a terminal, periodic status lines elsewhere, one line per finished run always.

    ``enabled``: True = the bar, False = neither bar nor status lines, None = the bar on a terminal, else a
    status line every ``status_interval`` seconds (0 or None: none)."""

    def __init__(self, total, done, enabled=None, status_interval=DEFAULT_STATUS_INTERVAL, stream=None):
        # the stream of the start: a run in this process redirects sys.stderr to its console.log
        self.stream = stream or sys.stderr
        on_terminal = bool(getattr(self.stream, 'isatty', lambda: False)())
        bar = enabled if enabled is not None else on_terminal
        self.status_interval = status_interval if enabled is None and not bar else None
        self.total, self.done, self.failed = total, done, 0
        self.running = {}
        self.last_status = time.monotonic()
        self.bar = tqdm(total=total, initial=done, desc='benchmark', unit='run', file=self.stream,
                        dynamic_ncols=True, disable=not bar,
                        bar_format='{desc}: {percentage:3.0f}%|{bar:10}| {n_fmt}/{total_fmt} runs '
                                   '[{elapsed}<{remaining}]{postfix}')  # tqdm writes ', ' before a postfix

    def event(self, event):
        kind, run_id = event.get('event'), event.get('run_id')
        if kind == 'start':
            self.running[run_id] = RunState(run_id, event['n_trials'])
        state = self.running.get(run_id)
        if state is None:
            return
        if kind == 'trial_start':
            state.trial, state.label, state.epoch, state.epochs = event['index'], None, None, None
        elif kind == 'epoch':
            state.trial, state.label = event['index'], stage_label(event.get('phase'), event.get('stage'))
            state.epoch, state.epochs = event.get('epoch'), event.get('epochs')
        self.bar.set_postfix_str(self.running_text())

    def running_text(self):
        return ', '.join(state.text() for state in self.running.values())

    def status_line(self):
        """``[12:03:04] 3/80 runs done (1 failed), running: ml_genre/TMCDR_MF/seed0 (trial 2/8, META epoch 12)``;
        ``running: (starting)`` while a worker starts."""
        return (f"[{datetime.now():%H:%M:%S}] {self.done}/{self.total} runs done"
                + (f' ({self.failed} failed)' if self.failed else '')
                + f", running: {self.running_text() or '(starting)'}")

    def tick(self):
        """A status line if ``status_interval`` seconds have passed since the last one."""
        now = time.monotonic()
        if self.status_interval and now - self.last_status >= self.status_interval:
            self.last_status = now
            print(self.status_line(), file=self.stream, flush=True)

    def finish(self, run_id, message, failed=False):
        self.running.pop(run_id, None)
        self.done += 1
        self.failed += bool(failed)
        self.bar.set_postfix_str(self.running_text(), refresh=False)
        self.bar.update(1)
        tqdm.write(message, file=self.stream)

    def close(self):
        self.bar.close()
