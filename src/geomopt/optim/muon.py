"""Muon as torch ships it, extended to conv filters.

``torch.optim.Muon`` accepts 2-D parameters only. Conv filters are hidden
matrices too once viewed as (out, in·kh·kw) (as in Keller Jordan's CIFAR
speedruns), so this subclass hands torch's own functional Muon step 2-D *views*
of every parameter, gradient and momentum buffer. For 2-D parameters it is
exactly ``torch.optim.Muon`` (the tests compare them bit for bit).

Subclasses (clip-then-Muon) transform the gradient matrices through
``_matrix_grads`` before the momentum. Under DDP, ``opt.shard = True`` makes each rank step
only its share of the matrices and broadcast them (``geomopt.optim.shard``).
"""

from __future__ import annotations

import torch

from geomopt.optim import shard
from geomopt.optim.closure import closure_loss
from geomopt.optim.routing import as_matrix
from geomopt.optim.torch_private import muon_step as _muon_step


class Muon(torch.optim.Muon):
    def __init__(self, params, **hyper):
        # torch's own argument checks, on a stand-in parameter (ours may be 4-D).
        probe = torch.optim.Muon([torch.zeros(1, 1)], **hyper)
        torch.optim.Optimizer.__init__(self, params, probe.defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim < 2:
                    raise ValueError(f"Muon takes matrices (or conv filters); got a parameter of shape "
                                     f"{tuple(p.shape)}: route it to AdamW (geomopt.optim.route_params)")

    def _matrix_grads(self, group: dict, params: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """Hook for subclasses: the 2-D gradients fed to Muon's momentum (identity here)."""
        return grads

    def _matrix_views(self, group: dict, only: list[torch.Tensor] | None = None
                      ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """2-D views of the group's parameters that have gradients (of ``only``'s, if given), their
        gradients and momentum buffers (created on first use)."""
        params, grads, bufs = [], [], []
        for p in group["params"] if only is None else only:
            if p.grad is None:
                continue
            if p.grad.is_sparse or torch.is_complex(p):
                raise RuntimeError("Muon does not support sparse gradients or complex parameters")
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p.grad, memory_format=torch.preserve_format)
            params.append(as_matrix(p))
            grads.append(as_matrix(p.grad))
            bufs.append(as_matrix(state["momentum_buffer"]))
        return params, grads, bufs

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            mine, stepped, owners = shard.my_share(self, group)
            params, grads, bufs = self._matrix_views(group, mine)
            shard.count_steps(self, len(params))
            if params:
                grads = self._matrix_grads(group, params, grads)
                _muon_step(params, grads, bufs, lr=group["lr"], weight_decay=group["weight_decay"],
                           momentum=group["momentum"], nesterov=group["nesterov"],
                           ns_coefficients=group["ns_coefficients"], eps=group["eps"],
                           ns_steps=group["ns_steps"], adjust_lr_fn=group["adjust_lr_fn"], has_complex=False)
            shard.broadcast_from_owners(stepped, owners)
        return loss
