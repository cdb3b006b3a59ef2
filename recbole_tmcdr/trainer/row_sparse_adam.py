"""Adam that updates only the embedding rows a batch looked up (``embedding_updates: row_sparse``).

torch's Adam, the paper's optimizer and the default, is dense: at every step it updates EVERY row of an embedding
table, since a row the batch did not look up has a zero gradient but moments that decay and still move it. A step
therefore costs the size of the tables (plus a dense zero-filled gradient of each table), and an epoch
(rows / batch) x (table size): on Amazon, whose tables have tens of thousands of rows, most of a pre-training or
CMF epoch. :class:`RowSparseAdam` is Adam with lazy updates of row-sparse gradients, as torch's ``SparseAdam``: the
tables produce row-sparse gradients (``nn.Embedding(sparse=True)``), and a step gathers the rows the batch looked
up together with their moments, updates them with torch's fused Adam (bias corrections at the global step count,
``weight_decay`` as L2 on those rows) and writes them back. A row that no batch looked up since it was last updated
keeps its value and moments: that is the one difference to dense Adam. Dense gradients (a bridge network, RecBole's
own models) get torch's dense fused Adam, unchanged.
"""

import torch
from torch.optim.adam import adam


class RowSparseAdam(torch.optim.Optimizer):
    """Adam; row-sparse gradients update only their rows (lazy Adam), dense gradients everything (torch's Adam)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group['params']:
                if param.grad is not None:
                    self._update(param, group)
        return loss

    def _update(self, param, group):
        state = self.state[param]
        if not state:
            state['step'] = torch.zeros((), dtype=torch.float32, device=param.device)
            state['exp_avg'] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state['exp_avg_sq'] = torch.zeros_like(param, memory_format=torch.preserve_format)
        grad = param.grad
        if grad.is_sparse:
            # the looked-up rows (a row looked up several times sums its gradients), with their moments
            rows, position = torch.unique(grad._indices()[0], return_inverse=True)
            values = grad._values()
            grad = torch.zeros((len(rows), *values.shape[1:]), dtype=values.dtype, device=values.device)
            grad.index_add_(0, position, values)
            tensors = [t.index_select(0, rows) for t in (param, state['exp_avg'], state['exp_avg_sq'])]
        else:
            rows, tensors = None, [param, state['exp_avg'], state['exp_avg_sq']]
        beta1, beta2 = group['betas']
        adam([tensors[0]], [grad], [tensors[1]], [tensors[2]], [], [state['step']], fused=True, amsgrad=False,
             beta1=beta1, beta2=beta2, lr=group['lr'], weight_decay=group['weight_decay'], eps=group['eps'],
             maximize=False)
        if rows is not None:
            for target, updated in zip((param, state['exp_avg'], state['exp_avg_sq']), tensors):
                target.index_copy_(0, rows, updated)
