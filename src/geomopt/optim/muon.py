"""Muon as torch ships it, extended to conv filters.

``torch.optim.Muon`` accepts 2-D parameters only. Conv filters are hidden
matrices too once viewed as (out, in·kh·kw) (as in Keller Jordan's CIFAR
speedruns), so this subclass hands torch's own functional Muon step 2-D *views*
of every parameter, gradient and momentum buffer. For 2-D parameters it is
exactly ``torch.optim.Muon`` (the tests compare them bit for bit).

Subclasses (clip-then-Muon) transform the gradient matrices through
``_matrix_grads`` before the momentum.

``orthogonalizer``: "newton_schulz" (torch's, the default: torch's step, bit for bit) or
"authors" (the DeVA authors' msign, geomopt.optim.orthogonalize; the same step equations).

Under DDP, ``opt.shard = True`` makes each rank step only its share of the matrices and
broadcast them (``geomopt.optim.shard``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from geomopt.optim import shard
from geomopt.optim.closure import closure_loss
from geomopt.optim.orthogonalize import check_orthogonalizer, msign_authors
from geomopt.optim.routing import as_matrix
from geomopt.optim.torch_private import adjust_lr as _adjust_lr
from geomopt.optim.torch_private import muon_step as _muon_step
from geomopt.optim.torch_private import zeropower_via_newtonschulz as _zeropower_via_newtonschulz


def orthogonalize(update: Tensor, group: dict) -> Tensor:
    """msign of one 2-D update by the group's orthogonalizer (torch's with the group's eps)."""
    if group.get("orthogonalizer") == "authors":  # .get: param groups saved before the option
        return msign_authors(update, group["ns_coefficients"], group["ns_steps"])
    return _zeropower_via_newtonschulz(update, group["ns_coefficients"], group["ns_steps"], group["eps"])


class Muon(torch.optim.Muon):
    def __init__(self, params, orthogonalizer: str = "newton_schulz", **hyper):
        # torch's own argument checks, on a stand-in parameter (ours may be 4-D).
        probe = torch.optim.Muon([torch.zeros(1, 1)], **hyper)
        torch.optim.Optimizer.__init__(self, params, {**probe.defaults, "orthogonalizer": orthogonalizer})
        for group in self.param_groups:
            check_orthogonalizer(group["orthogonalizer"], type(self).__name__)
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
                self._muon_update(group, params, grads=self._matrix_grads(group, params, grads), bufs=bufs)
            shard.broadcast_from_owners(stepped, owners)
        return loss

    def _muon_update(self, group: dict, params: list[Tensor], grads: list[Tensor], bufs: list[Tensor]) -> None:
        """Muon's step on 2-D views: torch's own function, or (another orthogonalizer) the same
        equations as torch's single-tensor loop."""
        if group.get("orthogonalizer", "newton_schulz") == "newton_schulz":
            _muon_step(params, grads, bufs, lr=group["lr"], weight_decay=group["weight_decay"],
                       momentum=group["momentum"], nesterov=group["nesterov"],
                       ns_coefficients=group["ns_coefficients"], eps=group["eps"], ns_steps=group["ns_steps"],
                       adjust_lr_fn=group["adjust_lr_fn"], has_complex=False)
            return
        for p, g, buf in zip(params, grads, bufs):
            buf.lerp_(g, 1 - group["momentum"])
            update = orthogonalize(g.lerp(buf, group["momentum"]) if group["nesterov"] else buf, group)
            p.mul_(1 - group["lr"] * group["weight_decay"])
            p.add_(update, alpha=-_adjust_lr(group["lr"], group["adjust_lr_fn"], p.shape))
