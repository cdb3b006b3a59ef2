"""RecBole's LightGCN with the same propagation computed faster on CPU.

Reference: Xiangnan He et al. "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation." SIGIR 2020 (RecBole's ``recbole.model.general_recommender.LightGCN``).

Every training step of RecBole's LightGCN propagates the whole graph: ``n_layers`` products of the normalised
adjacency matrix with the embeddings, forward and backward. RecBole keeps that matrix in COO form, whose product
on CPU is ~3x slower than CSR's, and whose backward first transposes it; it then stacks the layers to average
them, copying every layer once more. :class:`PropagatedLightGCN` is the same model (same parameters, loss, scores
and state dict) whose products use the matrix in CSR, made once per matrix tensor, whose backward multiplies by
its transpose without building it, and which sums the layers as they are made. Its training loss computes each
layer only at the rows the loss reads through the later layers: the last at the batch's users and items, the
one before at those and their neighbours, and so on; each a product with those rows of the matrix instead of the
whole matrix (at 2 layers on Amazon sport -> cloth, a batch's neighbours hold a third of the non-zeros). The
products differ from COO's by float32 rounding (summation order).
"""

import warnings

import scipy.sparse
import torch
from torch.autograd.function import once_differentiable
from recbole.model.general_recommender import LightGCN


class BlockMatmul(torch.autograd.Function):
    """``block @ dense`` for a block of rows of a fixed CSR matrix (or the whole matrix), given as ``(crow, col,
    values, shape)``: one non-tensor argument, because sparse tensors passed to ``apply`` themselves made autograd's
    backward ~7x slower (torch 2). The backward multiplies by the block's transpose without building it: on CPU
    scipy's CSC product over the same arrays (its indices converted to int32; ~3x faster than torch's transposed
    product or a scatter-add of the non-zeros at one thread; single-threaded whatever torch's setting), elsewhere
    torch's."""

    @staticmethod
    def forward(ctx, block, dense):
        crow, col, values, shape = ctx.block = block
        return torch.sparse_csr_tensor(crow, col, values, shape, device=dense.device, check_invariants=False) @ dense

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        crow, col, values, shape = ctx.block
        grad = grad.contiguous()
        if grad.device.type == 'cpu':
            block = scipy.sparse.csr_matrix((values.numpy(), col.numpy(), crow.numpy()), shape=shape)
            return None, torch.from_numpy(block.T @ grad.numpy())
        block = torch.sparse_csr_tensor(crow, col, values, shape, device=grad.device, check_invariants=False)
        return None, block.t() @ grad


def csr_row_block(csr, rows):
    """``(crow, col, values)`` of the sorted ``rows`` of a CSR matrix."""
    crow = csr.crow_indices()
    starts, lengths = crow[rows], crow[rows + 1] - crow[rows]
    block_crow = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    # the positions of the rows' non-zeros: each row's start, then consecutive
    entries = torch.arange(int(block_crow[-1]), device=crow.device) + torch.repeat_interleave(
        starts - block_crow[:-1], lengths)
    return block_crow, csr.col_indices()[entries], csr.values()[entries]


class CSRForm:
    """The CSR form of a COO matrix, built on first use of that matrix tensor (another tensor, such as the buffer
    moved to another device or a new graph, builds it anew). A copy of the model starts without it (torch cannot
    deep-copy CSR tensors) and builds its own."""

    def __init__(self):
        self.source, self.csr = None, None

    def of(self, coo):
        if self.source is not coo:
            with warnings.catch_warnings():  # torch warns that CSR is beta; the one product used here is tested
                warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')
                self.csr = coo.to_sparse_csr()
            self.source = coo
        return self.csr

    def __deepcopy__(self, memo):
        return CSRForm()


class PropagatedLightGCN(LightGCN):
    """RecBole's LightGCN whose :meth:`forward` multiplies by the CSR form of RecBole's matrix."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        coo = self.norm_adj_matrix.coalesce()
        del self.norm_adj_matrix  # RecBole's plain attribute, which model.to(device) would not move
        self.register_buffer('norm_adj_matrix', coo, persistent=False)
        self.csr = CSRForm()

    def forward(self):
        matrix = self.csr.of(self.norm_adj_matrix)
        whole = (matrix.crow_indices(), matrix.col_indices(), matrix.values(), tuple(matrix.shape))
        layer = self.get_ego_embeddings()
        total = layer
        for _ in range(self.n_layers):
            layer = BlockMatmul.apply(whole, layer)
            total = total + layer
        embeddings = total / (self.n_layers + 1)  # RecBole: the mean of the stacked layers
        return torch.split(embeddings, [self.n_users, self.n_items])

    def propagated_rows(self, nodes):
        """The rows ``nodes`` (sorted node ids: users, then ``n_users`` + item) of :meth:`forward`'s embeddings.
        Layer ``k`` is computed only at the rows the next layers read: the last at ``nodes``, each one before it
        at the rows of the one after and their neighbours (``n_layers - k`` hops from ``nodes``); its product
        is with those rows of the matrix, their columns renumbered into the previous layer's rows."""
        matrix = self.csr.of(self.norm_adj_matrix)
        # per layer, last first: [its rows, their CSR block (crow, col, values), where ``nodes`` are among the rows]
        blocks, rows, at = [], nodes, torch.arange(len(nodes), device=nodes.device)
        for k in range(self.n_layers):
            if k:  # this layer's rows: the next one's and their neighbours, its block's columns renumbered into them
                previous = len(rows)
                rows, inverse = torch.unique(torch.cat([rows, blocks[-1][2]]), return_inverse=True)
                blocks[-1][2], at = inverse[previous:], inverse[at]
            blocks.append([rows, *csr_row_block(matrix, rows), at])
        layer = self.get_ego_embeddings()
        total = layer[nodes]
        for rows, crow, col, values, at in reversed(blocks):
            layer = BlockMatmul.apply((crow, col, values, (len(rows), len(layer))), layer)
            total = total + layer[at]
        return total / (self.n_layers + 1)

    def calculate_loss(self, interaction):
        """RecBole's LightGCN loss (BPR on the propagated embeddings + ``reg_weight`` x L2 of the ego ones), with
        the embeddings propagated only to the batch's users and items (:meth:`propagated_rows`)."""
        self.restore_user_e, self.restore_item_e = None, None  # RecBole's cache of forward(), stale after the step
        user, pos_item, neg_item = (interaction[field] for field in (self.USER_ID, self.ITEM_ID, self.NEG_ITEM_ID))
        nodes, position = torch.unique(torch.cat([user, pos_item + self.n_users, neg_item + self.n_users]),
                                       return_inverse=True)
        u_embeddings, pos_embeddings, neg_embeddings = self.propagated_rows(nodes)[position].split(
            [len(user), len(pos_item), len(neg_item)])
        pos_scores = torch.mul(u_embeddings, pos_embeddings).sum(dim=1)
        neg_scores = torch.mul(u_embeddings, neg_embeddings).sum(dim=1)
        mf_loss = self.mf_loss(pos_scores, neg_scores)
        reg_loss = self.reg_loss(self.user_embedding(user), self.item_embedding(pos_item),
                                 self.item_embedding(neg_item), require_pow=self.require_pow)
        return mf_loss + self.reg_weight * reg_loss


# RecBole general models replaced by a faster implementation of the same model (recbole_general.py builds these).
FASTER_MODELS = {'LightGCN': PropagatedLightGCN}
