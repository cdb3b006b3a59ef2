"""Crash-safe on-disk cache of pre-trained embeddings (and of trained models: :mod:`recbole_tmcdr.trained_models`).

Files are written to a temporary name and renamed into place, carry a checksum of their tensors, and are
loaded with ``torch.load(weights_only=True)`` (no arbitrary unpickling). A missing, truncated or corrupt
file is a cache miss (logged), never a silently trusted result. The temporary files of writes that died
(``.tmp-<pid>@<host>@*``; never read) are removed when the cache directory is next opened.
"""

import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
import time
from logging import getLogger

import torch

CACHE_FORMAT_VERSION = 2  # 2: pre-trained after the source-sampler fix (compat)
TEMP_PREFIX = '.tmp-'
TEMP_WRITER = re.compile(r'^\.tmp-(\d+)@([^@]*)@')
# Writing embeddings takes seconds: a temporary file this old whose writer cannot be checked (another host,
# or an older name without the writer) is the leftover of a crash.
STALE_TEMP_SECONDS = 3600


def tensor_checksum(tensors):
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def state_checksum(value):
    """sha256 of nested dicts / lists of tensors and plain values (a state_dict whose modules keep extra state)."""
    digest = hashlib.sha256()

    def feed(item):
        if isinstance(item, torch.Tensor):
            digest.update(f'tensor {item.dtype} {tuple(item.shape)}:'.encode())
            digest.update(item.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(item, dict):
            digest.update(b'{')
            for key in sorted(item, key=repr):
                digest.update(repr(key).encode() + b':')
                feed(item[key])
            digest.update(b'}')
        elif isinstance(item, (list, tuple)):
            digest.update(b'[')
            for element in item:
                feed(element)
            digest.update(b']')
        else:
            digest.update(repr(item).encode() + b',')

    feed(value)
    return digest.hexdigest()


def sources_sha(root, libraries, keep=lambda relative: True):
    """16 hex digits of a sha256 over the ``*.py`` files under ``root`` that ``keep`` accepts (by their path
    relative to ``root``, which is hashed with each) and over the installed versions of ``libraries``: the code
    that made a cached or recorded result."""
    import importlib.metadata as metadata
    from pathlib import Path
    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted(root.rglob('*.py')):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and keep(relative):  # is_file: not an editor's lock file (.#module.py, a dangling link)
            digest.update(relative.encode() + b'\0' + path.read_bytes() + b'\0')
    for library in libraries:
        try:
            digest.update(f'{library}=={metadata.version(library)}'.encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()[:16]


def stable_key(fields):
    payload = json.dumps({'version': CACHE_FORMAT_VERSION, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def atomic_torch_save(obj, path):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f'{TEMP_PREFIX}{os.getpid()}@{socket.gethostname()}@',
                                    suffix='.pt')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def load_checked(path, checksum_of):
    """The payload of the file ``path`` (read with ``weights_only=True``) when its ``checksum`` is
    ``checksum_of(payload)``; None when the file is missing or corrupt (logged: a cache miss, never trusted)."""
    if not os.path.exists(path):
        return None
    try:
        payload = torch.load(path, weights_only=True, map_location='cpu')
        if checksum_of(payload) != payload['checksum']:
            raise ValueError('checksum mismatch')
    except Exception as error:  # a corrupt file of any kind is a miss, reported
        getLogger().warning(f'Ignoring corrupt cache file {path} ({error}); it will be rebuilt.')
        return None
    return payload


def process_is_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running, as another user
        return True
    return True


def write_died(path):
    """Whether the temporary file ``path`` is the leftover of a write that died: its writer's process on this
    host is gone, or (writer on another host or unnamed) it is older than :data:`STALE_TEMP_SECONDS`."""
    writer = TEMP_WRITER.match(os.path.basename(path))
    if writer and writer.group(2) == socket.gethostname():
        return not process_is_running(int(writer.group(1)))
    return time.time() - os.path.getmtime(path) > STALE_TEMP_SECONDS


def remove_dead_writes(directory):
    """Delete the leftovers of writes that died in ``directory`` (they are never read)."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        with contextlib.suppress(FileNotFoundError):  # another process removed it meanwhile
            if name.startswith(TEMP_PREFIX) and write_died(path):
                os.remove(path)


class TensorCache:
    """Named tensor dicts in ``<directory>/<key>.pt``."""

    def __init__(self, directory):
        self.directory = directory
        remove_dead_writes(directory)

    def path(self, key):
        return os.path.join(self.directory, f'{key}.pt')

    def load(self, key):
        payload = load_checked(self.path(key), lambda loaded: tensor_checksum(loaded['tensors']))
        return None if payload is None else payload['tensors']

    def save(self, key, tensors, description=None):
        tensors = {name: t.detach().cpu().clone() for name, t in tensors.items()}
        payload = {'tensors': tensors, 'checksum': tensor_checksum(tensors), 'description': description or ''}
        atomic_torch_save(payload, self.path(key))
