"""Data-parallel training across processes through Accelerate's process-group setup.

``accelerate launch -m genvision train ...`` (or ``torchrun -m genvision train ...``) sets the
usual ``RANK``/``WORLD_SIZE`` variables; Accelerate's ``PartialState`` initialises the process
group (gloo on CPU, NCCL on CUDA). Each rank trains on its own disjoint shard of every global
batch; gradients are averaged with one ``all_reduce`` per phase (what DDP does, without
wrapping the model, so models with several phases whose parameters are idle in some phases
need nothing special). Rank 0 writes every file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: str = "auto") -> Context:
    """Process context: single process unless launched with WORLD_SIZE > 1."""
    want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device; use --device cpu or auto")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        os.environ.update(local_rendezvous(os.environ))
        state = PartialState(cpu=not want_cuda)
        dev = state.device if want_cuda else torch.device("cpu")
        return Context(rank=state.process_index, world=state.num_processes, device=dev)
    return Context(device=torch.device("cuda" if want_cuda else "cpu"))


def local_rendezvous(env) -> dict[str, str]:
    """``MASTER_ADDR=127.0.0.1`` when every rank runs on this machine and no address was given.

    Launchers (``accelerate launch``, ``torchrun``) set the address themselves; a process group
    started by hand with only ``RANK`` / ``WORLD_SIZE`` / ``MASTER_PORT`` then listens on the
    loopback interface, never on every interface of the machine.
    """
    world = int(env.get("WORLD_SIZE", "1"))
    local = int(env.get("LOCAL_WORLD_SIZE", world))
    if env.get("MASTER_ADDR") or local != world:
        return {}
    return {"MASTER_ADDR": "127.0.0.1"}


def average_gradients(params, ctx: Context) -> None:
    """All-reduce the gradients of ``params`` to their mean across ranks (one flat buffer)."""
    if not ctx.active:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= ctx.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_module(module: torch.nn.Module, ctx: Context) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not ctx.active:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def all_finite(value: torch.Tensor, ctx: Context) -> bool:
    """True when ``value`` is finite on every rank."""
    ok = torch.tensor([float(torch.isfinite(value).all())], device=value.device)
    if ctx.active:
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item() > 0)


def mean_across(values: dict[str, float], ctx: Context) -> dict[str, float]:
    """Average logged scalars across ranks."""
    if not ctx.active or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: float(v) / ctx.world for k, v in zip(keys, t.tolist())}


def barrier(ctx: Context) -> None:
    if ctx.active:
        dist.barrier()


def shutdown(ctx: Context) -> None:
    """Leave the process group together.

    Every rank waits for the others first: rank 0 still writes the final checkpoint, grid and
    report after the last collective, and a rank that tears down gloo while a peer is still
    connected can abort at exit ("terminate called without an active exception").
    """
    if ctx.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
