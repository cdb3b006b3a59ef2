"""The wheel carries the plugin's resources: installed from it (not from the checkout), ``properties/`` and
``dataset_configs/`` resolve inside the installed package.

The wheel is built from a copy of the project files in a temporary directory, so the test writes nothing
(``build/``, ``*.egg-info``) into the checkout that other runs may be using.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
# Everything setup.cfg / pyproject.toml build from (README.md / MANIFEST.in only if present).
PROJECT_FILES = ['setup.cfg', 'pyproject.toml', 'setup.py', 'README.md', 'MANIFEST.in', 'LICENSE']
PROJECT_DIRS = ['recbole_tmcdr', 'properties', 'dataset_configs']


def _run(args, **kwargs):
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    assert out.returncode == 0, f'{args}\nstdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}'
    return out.stdout


def test_wheel_installs_resources_inside_the_package(tmp_path):
    source = tmp_path / 'src'
    source.mkdir()
    for name in PROJECT_FILES:
        if (PROJECT / name).is_file():
            shutil.copy2(PROJECT / name, source / name)
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info')
    for name in PROJECT_DIRS:
        shutil.copytree(PROJECT / name, source / name, ignore=ignore)

    wheels = tmp_path / 'wheels'
    _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-cache-dir', '-q',
          '-w', str(wheels), str(source)], cwd=tmp_path)
    (wheel,) = wheels.glob('recbole_tmcdr-*.whl')
    target = tmp_path / 'installed'
    _run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-cache-dir', '-q', '--target', str(target),
          str(wheel)], cwd=tmp_path)

    # A fresh interpreter in an unrelated directory: PYTHONPATH puts the installed copy before the editable
    # install of the checkout (whose finder is appended to sys.meta_path, after the path-based finder).
    script = textwrap.dedent('''
        import json
        import recbole_tmcdr
        from recbole_tmcdr import config
        print(json.dumps({
            'package': recbole_tmcdr.__file__,
            'properties': str(config.resource_dir('properties')),
            'dataset_configs': str(config.resource_dir('dataset_configs')),
            'yaml': [str(f) for f in config.plugin_yaml_files('EMCDR_MF')],
            'datasets': config.dataset_names(),
            'ml_genre': config.dataset_config_file('ml_genre'),
        }))
    ''')
    workdir = tmp_path / 'elsewhere'
    workdir.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target))
    found = json.loads(_run([sys.executable, '-c', script], cwd=workdir, env=env).strip().splitlines()[-1])

    package = (target / 'recbole_tmcdr').resolve()
    assert Path(found['package']).resolve().parent == package
    assert Path(found['properties']).resolve() == package / 'properties'
    assert Path(found['dataset_configs']).resolve() == package / 'dataset_configs'
    yaml_files = [Path(f).resolve() for f in found['yaml']]
    assert [f.relative_to(package).as_posix() for f in yaml_files] == [
        'properties/overall.yaml', 'properties/model/EMCDR.yaml', 'properties/model/EMCDR_MF.yaml']
    assert Path(found['ml_genre']).resolve() == package / 'dataset_configs' / 'ml_genre.yaml'
    # Every resource of the checkout made it into the wheel.
    assert found['datasets'] == sorted(p.stem for p in (PROJECT / 'dataset_configs').glob('*.yaml'))
    checkout_yaml = sorted(p.relative_to(PROJECT / 'properties').as_posix()
                           for p in (PROJECT / 'properties').rglob('*.yaml'))
    installed_yaml = sorted(p.relative_to(package / 'properties').as_posix()
                            for p in (package / 'properties').rglob('*.yaml'))
    assert installed_yaml == checkout_yaml
    # Every module of the checkout too: setup.cfg lists the packages explicitly, so a new subpackage that
    # is not added to [options] packages silently misses from the wheel.
    checkout_py = {p.relative_to(PROJECT / 'recbole_tmcdr').as_posix()
                   for p in (PROJECT / 'recbole_tmcdr').rglob('*.py') if '__pycache__' not in p.parts}
    installed_py = {p.relative_to(package).as_posix() for p in package.rglob('*.py') if '__pycache__' not in p.parts}
    missing = sorted(checkout_py - installed_py)
    missing_packages = sorted({'recbole_tmcdr.' + os.path.dirname(m).replace('/', '.') for m in missing
                               if os.path.dirname(m)})
    assert not missing, (f'Not in the wheel: {missing}. Add {missing_packages} to "packages =" under [options] '
                         'in setup.cfg.')



def package_import_graph():
    """Edges module -> imported package module, from module-level and function-level imports alike."""
    import ast

    import networkx as nx

    package = Path(__file__).resolve().parents[1] / 'recbole_tmcdr'
    graph = nx.DiGraph()
    for file in package.rglob('*.py'):
        module = '.'.join(file.relative_to(package.parent).with_suffix('').parts).removesuffix('.__init__')
        for node in ast.walk(ast.parse(file.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            graph.add_edges_from((module, name) for name in names if name.startswith('recbole_tmcdr.'))
    return graph


def test_the_registry_does_not_import_the_config_that_imports_it():
    import networkx as nx

    graph = package_import_graph()
    assert graph.has_edge('recbole_tmcdr.config', 'recbole_tmcdr.registry')
    assert not nx.has_path(graph, 'recbole_tmcdr.registry', 'recbole_tmcdr.config')
