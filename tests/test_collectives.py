"""In-batch negatives across DDP ranks: the retrieval loss and its gradient do not depend on
how many workers share the batch (two real gloo processes on 127.0.0.1)."""

from __future__ import annotations

import multiprocessing as mp
import socket

import torch

from trainables.tasks import family

PAIRS, DIM = 8, 6


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(DIM, DIM)


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(PAIRS, DIM, generator=g), torch.randn(PAIRS, DIM, generator=g)


def _loss(model, queries, candidates, pool: int | None = None):
    outputs = model(torch.cat([queries, candidates]))
    batch = {"pairs": len(queries), **({"negatives_pool": torch.tensor(pool)} if pool else {})}
    return family("retrieval").loss(outputs, batch)


def _rank(rank: int, world: int, port: int, split: list[int], out, pool: int | None = None) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    model = _model()
    q, c = _inputs()
    lo, hi = sum(split[:rank]), sum(split[:rank + 1])
    loss = _loss(model, q[lo:hi], c[lo:hi], pool)
    loss.backward()
    grad = model.weight.grad.clone()
    dist.all_reduce(grad)  # what DDP does: the mean of the ranks' gradients
    total = torch.tensor([loss.item() * (hi - lo)])
    dist.all_reduce(total)
    if rank == 0:
        out.put(((grad / world).tolist(), total.item() / PAIRS))
    dist.destroy_process_group()


def _two_ranks(split: list[int], pool: int | None = None):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, 2, port, split, out, pool)) for r in range(2)]
    for p in procs:
        p.start()
    result = out.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return torch.tensor(result[0]), result[1]


def test_retrieval_loss_and_gradient_are_the_same_on_one_rank_and_on_two():
    model = _model()
    loss = _loss(model, *_inputs())
    loss.backward()
    grad, mean_loss = _two_ranks([4, 4])
    assert abs(mean_loss - loss.item()) < 1e-5
    # each rank averages its own 4 queries and DDP averages the ranks: the global mean's gradient
    assert torch.allclose(grad, model.weight.grad, atol=1e-6)
    uneven, mean_uneven = _two_ranks([5, 3])  # a last batch split unevenly still sees all candidates
    q, c = _inputs()
    local = [_loss(_model(), q[:5], c[:5]).item(), _loss(_model(), q[5:], c[5:]).item()]
    assert abs(mean_uneven - loss.item()) < 1e-5 and abs(mean_uneven - (5 * local[0] + 3 * local[1]) / 8) > 1e-3


def test_pools_are_the_benchmarks_micro_batches_on_one_rank_and_on_two():
    """negatives_pool 4 on a global batch of 8: the loss and gradient of two separate 4-pair
    batches averaged (the scripts' gradient accumulation), whatever the ranks hold."""
    q, c = _inputs()
    model = _model()
    pooled = _loss(model, q, c, pool=4)
    pooled.backward()
    separate = [_model(), _model()]
    halves = [_loss(m, q[i:i + 4], c[i:i + 4]) for m, i in zip(separate, (0, 4))]
    for h in halves:
        h.backward()
    assert abs(pooled.item() - sum(h.item() for h in halves) / 2) < 1e-6
    accumulated = (separate[0].weight.grad + separate[1].weight.grad) / 2
    assert torch.allclose(model.weight.grad, accumulated, atol=1e-6)
    assert abs(pooled.item() - _loss(_model(), q, c).item()) > 1e-3  # one pool of 8 is another loss
    grad, mean_loss = _two_ranks([4, 4], pool=4)
    assert abs(mean_loss - pooled.item()) < 1e-5 and torch.allclose(grad, model.weight.grad, atol=1e-6)
    _, straddling = _two_ranks([3, 5], pool=4)  # pools cross the ranks; rank 0's rows are padded in the gather
    assert abs(straddling - pooled.item()) < 1e-5
