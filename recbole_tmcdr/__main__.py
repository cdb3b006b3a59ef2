"""``python -m recbole_tmcdr --model NAME --dataset NAME [--config_files a.yaml ...] [--import MODULE ...]
[--key=value ...]``."""

import argparse
import contextlib
import json
import os
import sys

from recbole_tmcdr.cli import add_import_argument, models_and_datasets_epilog, parse


def as_floats(metrics):
    """RecBole's metric dict (numpy scalars) as plain floats for JSON."""
    return {name: float(value) for name, value in (metrics or {}).items()}


def user_errors():
    """Errors about what the user gave (settings, names, data, files), not about the code."""
    from recbole_tmcdr.data import ScenarioDataError
    from recbole_tmcdr.registry import RegistryError
    from recbole_tmcdr.safe_loading import CheckpointError
    from recbole_tmcdr.validation import ConfigError
    return ConfigError, RegistryError, ScenarioDataError, CheckpointError, FloatingPointError


@contextlib.contextmanager
def user_errors_in_one_line(debug):
    """A user error's message names the problem and the fix: one line and exit code 2 (the traceback if
    ``debug``)."""
    try:
        yield
    except user_errors() as error:
        if debug:
            raise
        sys.stderr.write(f'recbole-tmcdr: error: {error}\n')
        raise SystemExit(2) from None


def build_parser():
    return argparse.ArgumentParser(
        prog='recbole-tmcdr',
        description='Train a model on a cold-start cross-domain scenario and evaluate it on cold users.',
        epilog=models_and_datasets_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter)


def imported_modules_and_debug(argv):
    """``--import`` and ``--debug``, read before the parser is built: its help lists the imported models too."""
    early = argparse.ArgumentParser(add_help=False)
    add_import_argument(early)
    early.add_argument('--debug', action='store_true')
    args, _ = early.parse_known_args(argv)
    return args.imports, args.debug or bool(os.environ.get('RECBOLE_TMCDR_DEBUG'))


def main(argv=None):
    from recbole_tmcdr.registry import import_modules
    imports, debug = imported_modules_and_debug(argv)
    with user_errors_in_one_line(debug):  # e.g. a module of --import, or an installed model package, that fails
        import_modules(imports)
        parser = build_parser()
    parser.add_argument('--model', required=True, help='registered model name (listed below)')
    parser.add_argument('--dataset', default=None, help='scenario name from dataset_configs/ (listed below)')
    parser.add_argument('--config_files', nargs='*', default=[], help='YAML files, applied after the scenario')
    parser.add_argument('--no_save', action='store_true', help="don't write a checkpoint to saved/")
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of a settings or data error (also: RECBOLE_TMCDR_DEBUG=1)')
    add_import_argument(parser)
    args, overrides = parse(parser, argv)

    from recbole_tmcdr import run_recbole_cdr
    with user_errors_in_one_line(debug):
        result = run_recbole_cdr(model=args.model, dataset=args.dataset, config_file_list=args.config_files,
                                 config_dict=overrides, saved=not args.no_save)
    print(json.dumps({'model': args.model, 'dataset': args.dataset,
                      'cold_valid': as_floats(result['best_valid_result']),
                      'cold_test': as_floats(result['test_result'])}, indent=1))
    return result


if __name__ == '__main__':
    main()
