"""Data layer: raw cross-domain data -> normalised domains -> cold-user split -> cached RecBole atomic files."""

from recbole_tmcdr.data.raw_sources import (
    CONVERTER_VERSION,
    SCENARIO_TYPES,
    DomainPair,
    ScenarioDataError,
    available_scenario_types,
    load_domains,
    normalise_domain,
    normalise_scenario,
    recbole_ml100k_dir,
    scenario_raw_files,
)
from recbole_tmcdr.data.cold_split import ColdSplit, make_cold_split
from recbole_tmcdr.data.scenario import (
    DEFAULT_CACHE_DIR,
    PreparedScenario,
    compute_cache_key,
    file_sha256,
    prepare_scenario,
    read_atomic_inter,
)

__all__ = [
    'CONVERTER_VERSION', 'SCENARIO_TYPES', 'DomainPair', 'ScenarioDataError', 'available_scenario_types',
    'load_domains', 'normalise_domain', 'normalise_scenario', 'recbole_ml100k_dir', 'scenario_raw_files',
    'ColdSplit', 'make_cold_split',
    'DEFAULT_CACHE_DIR', 'PreparedScenario', 'compute_cache_key', 'file_sha256', 'prepare_scenario',
    'read_atomic_inter',
]
