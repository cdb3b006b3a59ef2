"""``python -m recbole_tmcdr --model NAME --dataset NAME [--config_files a.yaml ...] [--key=value ...]``."""

import argparse
import json
import os

from recbole_tmcdr.cli import models_and_datasets_epilog, parse


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


def build_parser():
    return argparse.ArgumentParser(
        prog='recbole-tmcdr',
        description='Train a model on a cold-start cross-domain scenario and evaluate it on cold users.',
        epilog=models_and_datasets_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter)


def main(argv=None):
    parser = build_parser()
    parser.add_argument('--model', required=True, help='registered model name (listed below)')
    parser.add_argument('--dataset', default=None, help='scenario name from dataset_configs/ (listed below)')
    parser.add_argument('--config_files', nargs='*', default=[], help='YAML files, applied after the scenario')
    parser.add_argument('--no_save', action='store_true', help="don't write a checkpoint to saved/")
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of a settings or data error (also: RECBOLE_TMCDR_DEBUG=1)')
    args, overrides = parse(parser, argv)

    from recbole_tmcdr import run_recbole_cdr
    try:
        result = run_recbole_cdr(model=args.model, dataset=args.dataset, config_file_list=args.config_files,
                                 config_dict=overrides, saved=not args.no_save)
    except user_errors() as error:  # the message names the problem and the fix: one line, exit code 2
        if args.debug or os.environ.get('RECBOLE_TMCDR_DEBUG'):
            raise
        parser.exit(2, f'recbole-tmcdr: error: {error}\n')
    print(json.dumps({'model': args.model, 'dataset': args.dataset,
                      'cold_valid': as_floats(result['best_valid_result']),
                      'cold_test': as_floats(result['test_result'])}, indent=1))
    return result


if __name__ == '__main__':
    main()
