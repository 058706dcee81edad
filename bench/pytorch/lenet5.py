"""LeNet5 throughput in PyTorch, the reference side of `bench/run.mjs`.

Measures the same work as goldpan's `benchmark({ model: "lenet5", ... })`:
  train: forward + cross-entropy + backward + SGD step
         (lr 0.01, momentum 0.9, weight decay 5e-4) on one random batch
         B x 1 x 28 x 28 with random labels 0..9, reused every step;
  infer: forward only, under torch.inference_mode().
CPU, float32. Data are made once before timing; warmup steps are not timed.

Prints ONE JSON line on stdout:
  {"impl":"pytorch","torch":..., "model":"lenet5","mode":...,"batch":...,
   "threads":...,"iters":...,"wall_sec":...,"images_per_sec":...}
plus where torch came from, the OMP/MKL environment, and "others_busy": the share of the
machine's CPU other processes used during the timed steps (Linux; null elsewhere). Needs torch, which is
only a bench dependency: `bash bench/setup.sh`.
"""

import argparse
import json
import os
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("train", "infer"), required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def lenet5(nn):
    # 28x28 -> conv5 24x24 -> pool 12x12 -> conv5 8x8 -> pool 4x4 -> 16*4*4 = 256
    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(6, 16, 5),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(256, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


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

    model = lenet5(nn)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 44_426, n_params

    x = torch.randn(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))

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
                "model": "lenet5",
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
