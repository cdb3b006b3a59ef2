"""Build (or reuse) the RecBole atomic files of a cold-start scenario.

Layout of one prepared scenario, ``<cache_dir>/<name>/<key[:12]>/`` (this directory is ``data_path``)::

    <name>-<key8>-source/<name>-<key8>-source.inter        ALL source rows
    <name>-<key8>-source/<name>-<key8>-source.item         every source item token
    <name>-<key8>-target/<name>-<key8>-target.train.inter  target rows of warm users
    <name>-<key8>-target/<name>-<key8>-target.valid.inter  target rows of cold validation users
    <name>-<key8>-target/<name>-<key8>-target.test.inter   target rows of cold test users
    <name>-<key8>-target/<name>-<key8>-target.item         EVERY target item token (incl. cold-only items)
    split.json                                             stats, user lists, key, checksums (written last)

``.inter`` header: ``user_id:token  item_id:token  [timestamp:float]`` (the timestamp column only when the
domain has timestamps). The target ``.inter`` files are meant for RecBole's
``benchmark_filename: [train, valid, test]``; valid/test rows are grouped by user, in time order.

The cache key hashes the converter version, the normalised scenario, the sha256 of every raw file read,
the seed and the split fractions: a changed raw file or setting gives a new directory. A directory is
trusted only if its ``split.json`` is complete and the data files match the checksums it records;
otherwise it is rebuilt (with a warning). Building happens in a temporary directory next to the final
one, which is then renamed into place (atomic on POSIX; if another process won the race, its result is
kept).
"""

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
from tqdm import tqdm

from recbole_tmcdr.data.cold_split import ColdSplit, make_cold_split
from recbole_tmcdr.data.raw_sources import (
    CONVERTER_VERSION, ScenarioDataError, get_converter, normalise_scenario,
)

logger = logging.getLogger(__name__)

SPLIT_FORMAT_VERSION = 2  # 2: stats has target_rows_per_cold_test_user_max
DEFAULT_CACHE_DIR = '.recbole_tmcdr_cache'
_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')

# In-process cache of raw-file checksums: (absolute path, size, mtime_ns) -> sha256 hex.
_CHECKSUM_CACHE: Dict[Tuple[str, int, int], str] = {}


@dataclass
class PreparedScenario:
    data_path: str        # directory holding the two dataset directories (RecBole `data_path`)
    source_dataset: str   # RecBole dataset name of the source domain (directory + file stem)
    target_dataset: str   # RecBole dataset name of the target domain
    stats: Dict
    cold_valid_users: List[str]
    cold_test_users: List[str]
    warm_overlap_users: List[str]
    cache_key: str
    source_name: str = ''            # domain names (item token prefixes), e.g. "music"
    target_name: str = ''
    source_has_timestamp: bool = False  # whether the .inter files have a timestamp:float column
    target_has_timestamp: bool = False
    from_cache: bool = False         # True when an existing directory was reused

    @property
    def directory(self) -> str:
        return self.data_path

    def inter_path(self, part: str) -> str:
        """Path of an atomic file: part in {'source', 'train', 'valid', 'test'}."""
        if part == 'source':
            return os.path.join(self.data_path, self.source_dataset, f'{self.source_dataset}.inter')
        if part in ('train', 'valid', 'test'):
            return os.path.join(self.data_path, self.target_dataset, f'{self.target_dataset}.{part}.inter')
        raise ValueError(f'part must be source, train, valid or test, got {part!r}')


def file_sha256(path: str, use_cache: bool = True) -> str:
    """sha256 of a file; memoised in-process by (path, size, mtime_ns)."""
    path = os.path.abspath(path)
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if use_cache and key in _CHECKSUM_CACHE:
        return _CHECKSUM_CACHE[key]
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    digest = h.hexdigest()
    if use_cache:
        _CHECKSUM_CACHE[key] = digest
    return digest


_PREPARATION_SHA = {}


def preparation_code_sha() -> str:
    """sha256 of the code that prepares a scenario (this package's sources: converters, cold split) and of the
    versions of the libraries that read and shuffle its data: a split made by other code is never reused, even
    when a change forgot to bump CONVERTER_VERSION / SPLIT_FORMAT_VERSION."""
    if 'sha' not in _PREPARATION_SHA:
        from recbole_tmcdr.cache import sources_sha
        _PREPARATION_SHA['sha'] = sources_sha(os.path.dirname(os.path.abspath(__file__)), ('numpy', 'pandas'))
    return _PREPARATION_SHA['sha']


def compute_cache_key(scenario: dict, raw_checksums: List[str], seed: int, cold_user_ratio: float,
                      cold_valid_fraction: float) -> str:
    payload = {
        'converter_version': CONVERTER_VERSION,
        'split_format_version': SPLIT_FORMAT_VERSION,
        'code': preparation_code_sha(),
        'scenario': scenario,
        'raw_sha256': list(raw_checksums),
        'seed': int(seed),
        'cold_user_ratio': float(cold_user_ratio),
        'cold_valid_fraction': float(cold_valid_fraction),
    }
    blob = json.dumps(payload, sort_keys=True, separators=(',', ':'), default=str)
    return hashlib.sha256(blob.encode('utf-8')).hexdigest()


def write_atomic_inter(df: pd.DataFrame, path: str, with_timestamp: bool) -> None:
    cols = ['user', 'item'] + (['timestamp'] if with_timestamp else [])
    header = ['user_id:token', 'item_id:token'] + (['timestamp:float'] if with_timestamp else [])
    out = df[cols].copy()
    out.columns = header
    out.to_csv(path, sep='\t', index=False, na_rep='', float_format='%.17g', lineterminator='\n')


def read_atomic_inter(path: str) -> pd.DataFrame:
    """Read an atomic ``.inter`` written here back into columns user, item, timestamp (NaN if absent)."""
    df = pd.read_csv(path, sep='\t', dtype=str, keep_default_na=False, quoting=3)
    df.columns = [c.split(':')[0] for c in df.columns]
    ts = pd.to_numeric(df['timestamp'], errors='coerce') if 'timestamp' in df.columns else np.nan
    return pd.DataFrame({'user': df['user_id'], 'item': df['item_id'], 'timestamp': ts}).astype(
        {'timestamp': np.float64})


def _write_item_file(items, path: str) -> None:
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        f.write('item_id:token\n')
        for it in items:
            f.write(f'{it}\n')


def _data_files(directory: str) -> Dict[str, str]:
    """relative path -> sha256 of every file under ``directory`` except split.json."""
    out = {}
    for root, _, files in os.walk(directory):
        for fn in files:
            full = os.path.join(root, fn)
            rel = os.path.relpath(full, directory).replace(os.sep, '/')
            if rel == 'split.json':
                continue
            out[rel] = file_sha256(full, use_cache=False)
    return out


def _load_valid_split(directory: str, key: str) -> Tuple[Optional[dict], str]:
    """(split.json content, '') if the directory is complete and intact, else (None, reason)."""
    path = os.path.join(directory, 'split.json')
    if not os.path.isfile(path):
        return None, 'split.json is missing (interrupted build?)'
    try:
        with open(path, 'r', encoding='utf-8') as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        return None, f'split.json is unreadable ({e})'
    if not isinstance(meta, dict) or meta.get('cache_key') != key or meta.get('format_version') != SPLIT_FORMAT_VERSION:
        return None, 'split.json belongs to another key or format version'
    expected = meta.get('data_files')
    if not isinstance(expected, dict) or not expected:
        return None, 'split.json has no data file checksums'
    try:
        actual = _data_files(directory)
    except OSError as e:
        return None, f'cannot read the data files ({e})'
    if actual != expected:
        bad = sorted(set(expected) ^ set(actual))
        bad += sorted(k for k in expected if k in actual and actual[k] != expected[k])
        return None, f'data files do not match split.json checksums: {bad}'
    return meta, ''


def _prepared_from_meta(directory: str, meta: dict, from_cache: bool) -> PreparedScenario:
    return PreparedScenario(
        data_path=directory,
        source_dataset=meta['source_dataset'],
        target_dataset=meta['target_dataset'],
        stats=meta['stats'],
        cold_valid_users=list(meta['cold_valid_users']),
        cold_test_users=list(meta['cold_test_users']),
        warm_overlap_users=list(meta['warm_overlap_users']),
        cache_key=meta['cache_key'],
        source_name=meta['source_name'],
        target_name=meta['target_name'],
        source_has_timestamp=bool(meta['stats']['source_has_timestamp']),
        target_has_timestamp=bool(meta['stats']['target_has_timestamp']),
        from_cache=from_cache,
    )


def _remove_dir(path: str, parent: str) -> None:
    """Move ``path`` aside (atomic) and delete it, so no reader ever sees it half-deleted."""
    if not os.path.exists(path):
        return
    trash = tempfile.mkdtemp(dir=parent, prefix='.trash-')
    try:
        os.replace(path, os.path.join(trash, 'old'))
    except OSError:
        pass
    shutil.rmtree(trash, ignore_errors=True)


STALE_TEMP_SECONDS = 6 * 3600


def _remove_stale_temp_dirs(parent: str) -> None:
    """Delete ``.tmp-*`` / ``.trash-*`` leftovers of crashed builds (older than STALE_TEMP_SECONDS)."""
    now = time.time()
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith(('.tmp-', '.trash-')):
            continue
        path = os.path.join(parent, entry)
        try:
            if now - os.path.getmtime(path) > STALE_TEMP_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def _build(directory: str, name: str, key: str, scenario: dict, raw_data_path, raw_files: List[str],
           raw_sums: List[str], seed: int, ratio: float, vfrac: float, show_progress: bool = False) -> dict:
    conv = get_converter(scenario)
    t0 = time.time()
    steps = tqdm(total=3, desc=f'Converting {name}', unit='step', disable=not show_progress, leave=False)
    steps.set_postfix_str('reading the raw data')
    pair = conv.load(scenario, raw_data_path)
    steps.update()
    steps.set_postfix_str('splitting cold users')
    split: ColdSplit = make_cold_split(pair.source, pair.target, ratio, vfrac, seed)
    steps.update()
    steps.set_postfix_str('writing atomic files')
    src_ds, tgt_ds = f'{name}-{key[:8]}-source', f'{name}-{key[:8]}-target'
    s_ts, t_ts = split.stats['source_has_timestamp'], split.stats['target_has_timestamp']
    os.makedirs(os.path.join(directory, src_ds))
    os.makedirs(os.path.join(directory, tgt_ds))
    write_atomic_inter(split.source, os.path.join(directory, src_ds, f'{src_ds}.inter'), s_ts)
    _write_item_file(sorted(split.source['item'].unique()), os.path.join(directory, src_ds, f'{src_ds}.item'))
    for part, df in (('train', split.target_train), ('valid', split.target_valid), ('test', split.target_test)):
        write_atomic_inter(df, os.path.join(directory, tgt_ds, f'{tgt_ds}.{part}.inter'), t_ts)
    target_items = sorted(set(split.target_train['item']) | set(split.target_valid['item'])
                          | set(split.target_test['item']))
    _write_item_file(target_items, os.path.join(directory, tgt_ds, f'{tgt_ds}.item'))
    steps.update()
    steps.close()

    stats = dict(split.stats)
    stats['n_source_items'] = stats['source']['items']
    stats['n_target_items'] = len(target_items)
    stats['source_name'] = pair.source_name
    stats['target_name'] = pair.target_name
    meta = {
        'format_version': SPLIT_FORMAT_VERSION,
        'converter_version': CONVERTER_VERSION,
        'cache_key': key,
        'name': name,
        'scenario': scenario,
        'seed': int(seed),
        'cold_user_ratio': ratio,
        'cold_valid_fraction': vfrac,
        'raw_files': [{'path': p, 'sha256': s, 'size': os.path.getsize(p)} for p, s in zip(raw_files, raw_sums)],
        'source_dataset': src_ds,
        'target_dataset': tgt_ds,
        'source_name': pair.source_name,
        'target_name': pair.target_name,
        'stats': stats,
        'cold_valid_users': split.cold_valid_users,
        'cold_test_users': split.cold_test_users,
        'warm_overlap_users': split.warm_overlap_users,
        'data_files': _data_files(directory),
        'build_seconds': round(time.time() - t0, 3),
    }
    # split.json last: its presence + matching checksums is what makes a directory trusted.
    tmp_json = os.path.join(directory, 'split.json.tmp')
    with open(tmp_json, 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_json, os.path.join(directory, 'split.json'))
    return meta


def prepare_scenario(name: str, scenario: dict, raw_data_path=None, cache_dir=None, seed: int = 2022,
                     cold_user_ratio: float = 0.2, cold_valid_fraction: float = 0.5,
                     show_progress: bool = False) -> PreparedScenario:
    """Convert the raw data of ``scenario``, split cold users, write RecBole atomic files (cached).

    Args:
        name: scenario name (letters, digits, ``_.-``), e.g. ``douban_music_book``; names the cache directory
            and the datasets (``<name>-<key8>-source`` / ``-target``).
        scenario: the ``scenario:`` dict of a dataset config (``type`` + converter keys).
        raw_data_path: directory with the raw data folders (``douban/``, ``amazon_cdrib/``; generic relative
            paths resolve against it). Not needed for ``movielens_genre``.
        cache_dir: where prepared scenarios are stored (default ``./.recbole_tmcdr_cache``).
        seed, cold_user_ratio, cold_valid_fraction: see :func:`make_cold_split`.
        show_progress: a progress bar over the conversion steps (reading, splitting, writing).
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ScenarioDataError(f'scenario name {name!r} must consist of letters, digits, "_", "." or "-".')
    norm = normalise_scenario(scenario)
    conv = get_converter(norm)
    # Validate split settings before any heavy work.
    from recbole_tmcdr.data.cold_split import _check_fraction
    ratio = _check_fraction(cold_user_ratio, 'cold_user_ratio')
    vfrac = _check_fraction(cold_valid_fraction, 'cold_valid_fraction')
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ScenarioDataError(f'seed must be an integer, got {seed!r}.')
    seed = int(seed)

    raw_files = conv.raw_files(norm, raw_data_path)
    raw_sums = [file_sha256(p) for p in raw_files]
    key = compute_cache_key(norm, raw_sums, seed, ratio, vfrac)

    cache_dir = os.path.abspath(os.path.expanduser(str(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR)))
    parent = os.path.join(cache_dir, name)
    final = os.path.join(parent, key[:12])
    os.makedirs(parent, exist_ok=True)
    _remove_stale_temp_dirs(parent)

    if os.path.isdir(final):
        meta, reason = _load_valid_split(final, key)
        if meta is not None:
            logger.info('scenario %s: reusing %s', name, final)
            return _prepared_from_meta(final, meta, from_cache=True)
        logger.warning('scenario %s: cached directory %s is not usable (%s); rebuilding it.', name, final, reason)
        _remove_dir(final, parent)

    tmp = tempfile.mkdtemp(dir=parent, prefix=f'.tmp-{key[:12]}-')
    os.chmod(tmp, 0o755)  # mkdtemp creates 0700; the renamed result should be readable like other dirs
    try:
        meta = _build(tmp, name, key, norm, raw_data_path, raw_files, raw_sums, seed, ratio, vfrac, show_progress)
        for attempt in range(2):
            try:
                os.replace(tmp, final)  # atomic; fails if `final` exists and is not empty
                break
            except OSError:
                theirs, reason = _load_valid_split(final, key)
                if theirs is not None:  # another process won the race with a complete result: keep it
                    logger.info('scenario %s: another process prepared %s first; using it.', name, final)
                    return _prepared_from_meta(final, theirs, from_cache=True)
                if attempt == 1:
                    raise
                logger.warning('scenario %s: %s is not usable (%s); replacing it.', name, final, reason)
                _remove_dir(final, parent)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info('scenario %s: prepared %s (%s)', name, final, meta['stats'])
    return _prepared_from_meta(final, meta, from_cache=False)
