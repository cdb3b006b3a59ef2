"""RecBole's LightGCN with the same propagation computed faster on CPU.

Reference: Xiangnan He et al. "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation." SIGIR 2020 (RecBole's ``recbole.model.general_recommender.LightGCN``).

Every training step of RecBole's LightGCN propagates the whole graph: ``n_layers`` products of the normalised
adjacency matrix with the embeddings, forward and backward. RecBole keeps that matrix in COO form, whose product
on CPU is ~3x slower than CSR's, and whose backward first transposes it; it then stacks the layers to average
them, copying every layer once more. :class:`PropagatedLightGCN` is the same model (same parameters, loss, scores
and state dict) whose products use the matrix and its transpose in CSR, made once per device, and which sums the
layers as they are made. The products differ from COO's by float32 rounding (summation order).
"""

import warnings

import torch
from recbole.model.general_recommender import LightGCN


class SparseMatmul(torch.autograd.Function):
    """``matrix @ dense`` for a fixed sparse matrix, given as ``(matrix, its transpose)``, whose backward multiplies
    by the transpose (no transpose per step). The pair is one non-tensor argument: sparse tensors passed to
    ``apply`` themselves made autograd's backward ~7x slower (torch 2)."""

    @staticmethod
    def forward(ctx, matrices, dense):
        ctx.transposed = matrices[1]
        return matrices[0] @ dense

    @staticmethod
    def backward(ctx, grad):
        return None, ctx.transposed @ grad.contiguous()


class CSRPair:
    """The CSR form of a COO matrix and of its transpose, built on first use for the matrix's device. A copy of the
    model starts without them (torch cannot deep-copy CSR tensors) and builds its own."""

    def __init__(self):
        self.pair = None

    def of(self, coo):
        if self.pair is None or self.pair[0].device != coo.device:
            with warnings.catch_warnings():  # torch warns that CSR is beta; the one product used here is tested
                warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')
                self.pair = (coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr())
        return self.pair

    def __deepcopy__(self, memo):
        return CSRPair()


class PropagatedLightGCN(LightGCN):
    """RecBole's LightGCN whose :meth:`forward` multiplies by the CSR form of RecBole's matrix."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        coo = self.norm_adj_matrix.coalesce()
        del self.norm_adj_matrix  # RecBole's plain attribute, which model.to(device) would not move
        self.register_buffer('norm_adj_matrix', coo, persistent=False)
        self.csr = CSRPair()

    def forward(self):
        layer = self.get_ego_embeddings()
        total = layer
        for _ in range(self.n_layers):
            layer = SparseMatmul.apply(self.csr.of(self.norm_adj_matrix), layer)
            total = total + layer
        embeddings = total / (self.n_layers + 1)  # RecBole: the mean of the stacked layers
        return torch.split(embeddings, [self.n_users, self.n_items])


# RecBole general models replaced by a faster implementation of the same model (recbole_general.py builds these).
FASTER_MODELS = {'LightGCN': PropagatedLightGCN}
