"""Model throughput in PyTorch, the reference side of `bench/run.mjs`.

Measures the same work as goldpan's `benchmark({ model, ... })`, for --model lenet5 (default),
lenet-base or dtn (SHOT's digit networks; see models.py):
  train: forward + cross-entropy + backward + SGD step
         (lr 0.01, momentum 0.9, weight decay 5e-4) on one random batch
         B x C x H x W (the model's input shape: 1x28x28, dtn 3x32x32) with random labels
         0..9, reused every step, in train() mode (dropout and batch-norm batch statistics on);
  infer: forward only, under torch.inference_mode(), in eval() mode.
CPU, float32. Data are made once before timing; warmup steps are not timed.

Prints ONE JSON line on stdout:
  {"impl":"pytorch","torch":..., "model":...,"params":...,"mode":...,"batch":...,
   "threads":...,"iters":...,"wall_sec":...,"images_per_sec":...}
plus where torch came from, the OMP/MKL environment, and "others_busy": the share of the
machine's CPU other processes used during the timed steps (Linux; null elsewhere). Needs torch, which is
only a bench dependency: `bash bench/setup.sh`. The file keeps its name (mnist_epoch.py imports
`lenet5` from it).
"""

import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no bench/pytorch/__pycache__ (not git-ignored) from models.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import MODELS, lenet5  # noqa: E402,F401  (same folder; lenet5 for mnist_epoch.py)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=tuple(MODELS), default="lenet5")
    p.add_argument("--mode", choices=("train", "infer"), required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def torch_source(torch):
    path = os.path.realpath(torch.__file__)
    return "debian" if path.startswith("/usr/lib/python3/") else "pypi"


def machine_cpu_sec():
    """CPU seconds all processes have used so far (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal: everything but idle and iowait.
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def main(argv):
    args = parse_args(argv)
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    spec = MODELS[args.model]
    model = spec.build(nn)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == spec.params, (args.model, n_params, spec.params)

    x = torch.randn(args.batch, *spec.input_shape)
    y = torch.randint(0, spec.classes, (args.batch,))

    if args.mode == "train":
        model.train()
        loss_fn = nn.CrossEntropyLoss()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss

    else:
        model.eval()

        def step():
            with torch.inference_mode():
                return model(x)

    for _ in range(args.warmup):
        step()
    m0, c0, t0 = machine_cpu_sec(), time.process_time(), time.perf_counter()
    for _ in range(args.iters):
        out = step()
    # Reading a value forces the last step to have finished (CPU is synchronous anyway).
    float(out.detach().sum())
    wall = time.perf_counter() - t0
    own, m1 = time.process_time() - c0, machine_cpu_sec()
    # Share of the machine's CPU that other processes used while we were timed.
    others = None if m0 is None else max(0.0, (m1 - m0 - own) / (wall * os.cpu_count()))

    print(
        json.dumps(
            {
                "impl": "pytorch",
                "torch": torch.__version__,
                "torch_source": torch_source(torch),
                "model": args.model,
                "params": n_params,
                "mode": args.mode,
                "batch": args.batch,
                "threads": torch.get_num_threads(),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "mkl_num_threads": os.environ.get("MKL_NUM_THREADS"),
                "iters": args.iters,
                "wall_sec": wall,
                "images_per_sec": args.batch * args.iters / wall,
                "others_busy": None if others is None else round(others, 3),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
