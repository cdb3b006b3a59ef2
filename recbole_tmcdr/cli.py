"""Command-line parsing shared by ``python -m recbole_tmcdr`` and ``python -m recbole_tmcdr.compare``."""

import sys

import yaml

from recbole_tmcdr.config import SafeConfigLoader


def models_and_datasets_epilog():
    from recbole_tmcdr.config import dataset_names
    from recbole_tmcdr.registry import MODELS
    return (f"models: {', '.join(MODELS.names())}\n"
            f"datasets: {', '.join(dataset_names())}\n"
            'Any other parameter: --key=value (YAML value, e.g. --learning_rate=0.005 --mapping_layers=[512]).')


def add_import_argument(parser):
    parser.add_argument('--import', dest='imports', action='append', default=[], metavar='MODULE',
                        help='import MODULE first: a module of your own that registers models (repeatable)')


def parse_overrides(extra_args, parser):
    """``--key=value`` pairs into a config dict, values read as YAML (``1e-3`` is a float, as in RecBole)."""
    overrides = {}
    for arg in extra_args:
        if not arg.startswith('--') or '=' not in arg:
            parser.error(f"unrecognised argument '{arg}': parameters are written --key=value")
        key, value = arg[2:].split('=', 1)
        overrides[key] = yaml.load(value, Loader=SafeConfigLoader) if value.strip() else value
    return overrides


def parse(parser, argv=None):
    args, extra = parser.parse_known_args(argv)
    overrides = parse_overrides(extra, parser)
    # CDRConfig also reads sys.argv: leave it nothing to re-interpret.
    sys.argv = sys.argv[:1]
    return args, overrides
