"""Zero the optimizer moments that decayed into float32's denormal range.

Adam's moments of an embedding row that stops receiving gradient decay (x0.9 and x0.999 per step) below 1.2e-38,
float32's smallest normal number, and stay there: 0.9 x the smallest denormal rounds back to it. On x86 an
arithmetic operation on a denormal is ~10x slower, so every later step of dense Adam, which updates every row,
slows down as such rows accumulate: on Amazon sport -> cloth, 27% of CML_merged's user-table first moment after 8
epochs, each epoch ~2x longer than the first (speed/README.md). Such a moment moves its parameter by ~1e-30 of a
step, below float32's resolution for any parameter larger than ~1e-22 in magnitude, so zeroing it changes no
parameter in practice (tests/test_denormals.py).
Zeroing the optimizer's state, rather than setting the CPU's flush-to-zero mode (``torch.set_flush_denormal``),
leaves the floating-point behaviour of every other computation, and of torch's worker threads, as it was.
"""

import torch

SWEEP_STEPS = 64  # steps between sweeps: a row's first moment stays denormal for at most this many steps
SWEPT_DTYPES = (torch.float32, torch.float64)  # float16's smallest normal number (6e-5) is an ordinary moment


def zero_denormal_state(optimizer):
    """Set every denormal entry of the optimizer's state tensors to zero."""
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value) and value.dtype in SWEPT_DTYPES and value.dim() and not value.is_sparse:
                value.masked_fill_(value.abs() < torch.finfo(value.dtype).tiny, 0)


def sweep_denormals(optimizer, every=SWEEP_STEPS):
    """``optimizer``, which now zeroes its denormal state after every ``every``-th step."""
    steps = [0]

    def after_step(opt, args, kwargs):
        steps[0] += 1
        if steps[0] % every == 0:
            zero_denormal_state(opt)

    optimizer.register_step_post_hook(after_step)
    return optimizer
