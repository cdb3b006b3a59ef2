"""What every converter shares: the error type, the two-domain result, file and name checks, the
normalisation of a domain and the converter base class."""

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

RAW_DATA_PATH_HINT = (
    'Set `raw_data_path` in the config (command line: --raw_data_path=/path/to/data) to the directory '
    'that holds the raw data folders.'
)

_DOMAIN_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')


class ScenarioDataError(ValueError):
    """Raw data or scenario settings cannot be turned into a cold-start scenario.

    The message always names the problem and what to change (file, line, config key).
    """


@dataclass
class DomainPair:
    """The two normalised domains of a scenario (see the module docstring for the columns)."""

    source: pd.DataFrame
    target: pd.DataFrame
    source_name: str
    target_name: str
    raw_files: List[str] = field(default_factory=list)

    def __iter__(self):  # allows ``source_df, target_df = load_domains(...)``
        return iter((self.source, self.target))

def missing_file_error(path: str, what: str, raw_data_path, key_hint: str = '',
                        uses_raw_data_path: bool = True) -> ScenarioDataError:
    path = os.path.abspath(path)
    directory, fname = os.path.split(path)
    dir_state = '' if os.path.isdir(directory) else ' (that directory does not exist either)'
    msg = f'Raw data file {fname!r} not found in directory {directory!r}{dir_state}; {what}.'
    if uses_raw_data_path:
        current = None if raw_data_path is None else os.path.abspath(os.path.expanduser(str(raw_data_path)))
        msg += f' raw_data_path is currently {current!r}. {RAW_DATA_PATH_HINT}'
    if key_hint:
        msg += ' ' + key_hint
    return ScenarioDataError(msg)


def require_file(path: str, what: str, raw_data_path, key_hint: str = '', uses_raw_data_path: bool = True) -> str:
    if not os.path.isfile(path):
        raise missing_file_error(path, what, raw_data_path, key_hint, uses_raw_data_path)
    return os.path.abspath(path)


def require_raw_data_path(raw_data_path, scenario_type: str) -> str:
    if raw_data_path is None or str(raw_data_path) == '':
        raise ScenarioDataError(
            f'Scenario type {scenario_type!r} reads raw files but no raw data directory was given. '
            + RAW_DATA_PATH_HINT
        )
    return os.path.abspath(os.path.expanduser(str(raw_data_path)))


def _check_domain_name(name, key: str, scenario_type: str) -> str:
    if not isinstance(name, str) or not _DOMAIN_NAME_RE.match(name):
        raise ScenarioDataError(
            f'scenario.{key} = {name!r} is not a valid domain name for a {scenario_type!r} scenario: use '
            f'letters, digits, "_", "." or "-" (it prefixes the item tokens, e.g. "{name}:10").'
        )
    return name


def normalise_domain(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Collapse duplicated (user, item) pairs and fix dtypes.

    ``df`` has columns user, item (str, already prefixed) and timestamp (float, may be NaN). The earliest
    timestamp of a duplicated pair is kept (rows without a timestamp count as latest; among equal or
    missing timestamps the first occurrence wins); the output keeps the input order of the kept rows.
    """
    if len(df) == 0:
        raise ScenarioDataError(f'{where}: the domain has no interactions (empty file or everything filtered '
                                f'out by a rating threshold).')
    out = pd.DataFrame({
        'user': df['user'].astype(str).to_numpy(),
        'item': df['item'].astype(str).to_numpy(),
        'timestamp': pd.to_numeric(df['timestamp'], errors='coerce').astype(np.float64).to_numpy(),
    })
    out['_pos'] = np.arange(len(out))
    out = out.sort_values(['timestamp', '_pos'], kind='mergesort', na_position='last')
    out = out.drop_duplicates(['user', 'item'], keep='first').sort_values('_pos', kind='mergesort')
    out = out.drop(columns='_pos').reset_index(drop=True)
    out['timestamp'] = out['timestamp'].astype(np.float64)
    if len(out) < len(df):
        logger.warning('%s: %d duplicated (user, item) rows collapsed into one each (earliest timestamp kept).',
                       where, len(df) - len(out))
    single = int((out['user'].value_counts() == 1).sum())
    if single:
        # kept on purpose: a warm user with one row still trains; a cold one is evaluated at K=0 only
        logger.info('%s: %d users have a single interaction (kept).', where, single)
    return out


def check_overlap(pair: DomainPair, where_source: str, where_target: str) -> DomainPair:
    common = np.intersect1d(pair.source['user'].unique(), pair.target['user'].unique())
    if len(common) == 0:
        raise ScenarioDataError(
            f'No overlapping users between the source domain {pair.source_name!r} ({where_source}) and the target '
            f'domain {pair.target_name!r} ({where_target}): a cold-start scenario needs users present in both. '
            f'User ids must denote the same person in both files (first source users: '
            f'{list(pair.source["user"].unique()[:3])}, first target users: {list(pair.target["user"].unique()[:3])}).'
        )
    return pair


class Converter:
    """Base class. ``normalise_scenario`` validates keys and fills defaults (the result goes into the
    cache key), ``raw_files`` lists every file that will be read (checked to exist), ``load`` converts."""

    type_name = ''
    required_keys: Tuple[str, ...] = ()
    defaults: Dict = {}
    doc = ''
    same_domains_error = 'scenario.source and scenario.target (the domain names) must differ.'

    def normalise_scenario(self, scenario: dict) -> dict:
        # `name` (the scenario's name, used by the config layer) is allowed and ignored here.
        allowed = {'type', 'name'} | set(self.required_keys) | set(self.defaults)
        unknown = sorted(set(scenario) - allowed)
        if unknown:
            raise ScenarioDataError(
                f'Unknown key(s) {unknown} in the {self.type_name!r} scenario; allowed keys: {sorted(allowed)}. '
                f'({self.doc})'
            )
        missing = [k for k in self.required_keys if scenario.get(k) in (None, '')]
        if missing:
            raise ScenarioDataError(
                f'The {self.type_name!r} scenario needs the key(s) {missing} under `scenario:` ({self.doc})'
            )
        out = {'type': self.type_name}
        for k, v in self.defaults.items():
            out[k] = scenario.get(k, v)
            if out[k] is None:
                out[k] = v
        for k in self.required_keys:
            out[k] = scenario[k]
        for key in ('source', 'target'):
            _check_domain_name(out[key], key, self.type_name)
        if out['source'] == out['target']:
            raise ScenarioDataError(self.same_domains_error)
        self.validate(out)
        return out

    def validate(self, scenario: dict) -> None:
        """Checks of the converter's own keys (scenario.source and scenario.target are checked already)."""

    def raw_files(self, scenario: dict, raw_data_path) -> List[str]:
        raise NotImplementedError

    def load(self, scenario: dict, raw_data_path) -> DomainPair:
        raise NotImplementedError


def check_threshold(value, key: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioDataError(f'scenario.{key} must be a number or null, got {value!r}.')
