"""Device-clean models: every tensor a model creates while it trains, predicts and ranks follows its device.

There is no GPU here, so the test checks how tensors are made rather than where they end up. Each model call
runs under a torch function mode that sees every call of a tensor constructor (torch's own list of the
functions that take ``device=``: ``zeros``, ``arange``, ``randint``, ``tensor``, ``as_tensor``, ...) and
records those made FROM THE PLUGIN'S CODE without ``device=``: on a CUDA model such a tensor is on the CPU, and
the first operation that meets it with the model's tensors fails. (Constructors called by RecBole's own models,
e.g. ``torch.zeros(1).to(device)`` in its losses, are RecBole's business and not recorded.) Tensors a model
keeps must be parameters or buffers, which ``model.to(device)`` moves: a plain tensor attribute of a plugin
module is an error too. Each registered model runs one training batch of each of its phases (loss and
backward), ``predict``, ``full_sort_predict`` and the K-shot scoring (with a test-time adaptation step).
"""

import os
import sys

import pytest
import torch
from recbole.data.interaction import Interaction
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

import recbole_tmcdr
from recbole_tmcdr.model.cold_start_recommender import WARM_USER_FIELD
from recbole_tmcdr.phases import Phase
from recbole_tmcdr.registry import MODELS
from recbole_tmcdr.trainer.cold_start_trainer import WarmUserLoader

from conftest import Pipeline
from test_common import tiny_settings

PACKAGE_DIR = os.path.dirname(recbole_tmcdr.__file__) + os.sep
TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


class DevicelessConstructors(TorchFunctionMode):
    """Records (file:line, function) of every tensor constructor the plugin's code calls without ``device=``."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _device_constructors() and kwargs.get('device') is None:
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith(TORCH_DIR):
                frame = frame.f_back  # torch's own Python wrappers: the caller is further up
            if frame is not None and frame.f_code.co_filename.startswith(PACKAGE_DIR):
                where = os.path.relpath(frame.f_code.co_filename, os.path.dirname(PACKAGE_DIR.rstrip(os.sep)))
                self.calls.append(f'{where}:{frame.f_lineno} torch.{func.__name__}')
        return func(*args, **kwargs)


def plain_tensor_attributes(model):
    """Tensors held by a plugin module outside its parameters and buffers (``model.to(device)`` misses them)."""
    return [f'{type(module).__name__}.{name}' for module in model.modules()
            if type(module).__module__.startswith('recbole_tmcdr')
            for name, value in vars(module).items() if isinstance(value, torch.Tensor)]


def training_batches(run, phase):
    """One batch of each loader ``phase`` trains on (TMCDR: its warm start and its meta stage)."""
    trainer, model = run.trainer, run.model
    if trainer.is_pretraining(phase):
        return [next(iter(trainer.training_loader(run.train_data, phase)))]
    batches = [next(iter(trainer.bridge_loader(run.train_data)))]
    if WARM_USER_FIELD not in batches[0] and hasattr(model, 'meta_loss'):
        batches.append(next(iter(WarmUserLoader(model.warm_overlap_users, 8))))
    return batches


def cold_users(run):
    interaction = next(iter(run.valid_data))[0]
    return interaction[run.model.TARGET_USER_ID][:4]


@pytest.mark.parametrize('model', MODELS.names())
def test_model_calls_create_no_tensor_off_the_model_device(model, tiny_scenario):
    settings = dict(tiny_settings(model, tiny_scenario), meta_test_adapt_steps=1)
    run = Pipeline(model, [tiny_scenario], **settings)
    model_obj = run.model
    assert not plain_tensor_attributes(model_obj)
    deviceless = DevicelessConstructors()
    phases = [Phase(p.split(':')[0]) for p in run.config['train_epochs']] if 'train_epochs' in settings else []
    for phase in phases:
        if phase not in model_obj.train_phases:
            continue
        model_obj.set_phase(phase)
        model_obj.train()
        for batch in training_batches(run, phase):
            model_obj.zero_grad(set_to_none=True)
            with deviceless:
                model_obj.calculate_loss(batch).backward()

    model_obj.eval()
    users = cold_users(run)
    items = torch.arange(1, 4).repeat(len(users))
    support = [torch.tensor([1, 2]) for _ in users]
    with deviceless:
        with torch.no_grad():
            full = model_obj.full_sort_predict(Interaction({model_obj.TARGET_USER_ID: users}))
            model_obj.predict(Interaction({model_obj.TARGET_USER_ID: users.repeat_interleave(3),
                                           model_obj.TARGET_ITEM_ID: items}))
        model_obj.kshot_full_scores(users, support)  # TMCDR adapts theta on the K items (meta_test_adapt_steps: 1)
    assert full.numel() == len(users) * model_obj.target_num_items
    assert not deviceless.calls, sorted(set(deviceless.calls))


def test_the_check_sees_a_constructor_without_device():
    deviceless = DevicelessConstructors()
    with deviceless:  # code compiled as a file of the package calls torch.zeros with and without a device
        exec(compile('torch.zeros(2); torch.zeros(2, device="cpu")', os.path.join(PACKAGE_DIR, 'probe.py'), 'exec'),
             {'torch': torch})
        torch.ones(2)  # the test's own frame: not the plugin's
    assert deviceless.calls == ['recbole_tmcdr/probe.py:1 torch.zeros']
