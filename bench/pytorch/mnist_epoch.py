"""Full MNIST epochs of LeNet5 in PyTorch, the reference side of `bench/mnist-epoch.mjs`.

The same run as `goldpan train --epochs E --batch-size B` (defaults lr 0.01, momentum 0.9,
weight decay 5e-4, seed 0):
  - data: the IDX files in DATA/mnist (raw if present, else .gz), read with gzip + struct +
    numpy; the whole training set is one float32 tensor N x 1 x 28 x 28, normalised once as
    (x/255 - 0.5)/0.5 (goldpan normalises each gathered batch instead);
  - each epoch: a permutation from a torch.Generator seeded once with --seed, batches of B in
    that order, the last one partial (ceil(N/B) steps); per step forward + cross-entropy +
    backward + SGD step, plus the loss value and the hit count (goldpan computes both too);
  - after each epoch: evaluation on all 10,000 test images, batches of max(B, 500), in eval()
    mode under torch.inference_mode() (as goldpan does).
The model is `lenet5()` from bench/pytorch/lenet5.py. CPU, float32.

Prints ONE JSON line on stdout:
  {"impl":"pytorch","torch","torch_source","epochs","batch","threads","train_sec","total_sec",
   "images_per_sec","test_accuracy", ...}
train_sec: the training loops only (sum over epochs, no evaluation, no data loading);
total_sec: data loading, training and evaluations (not `import torch`, nor setup_sec: model
and optimizer construction, where torch lazily imports more of itself);
images_per_sec: training images / train_sec. Also train_images, train_loss, train_accuracy,
test_loss, setup_sec, load_sec, eval_sec, and others_busy: the share of the machine's CPU that other
processes used during the training loops (Linux; null elsewhere).
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no bench/pytorch/__pycache__ (not git-ignored) from this import
from lenet5 import lenet5, machine_cpu_sec, torch_source  # noqa: E402  (same folder)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"),
                   help="folder that contains mnist/ (default: ../shared/data from the repo root)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name in ("epochs", "batch", "limit", "threads"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name} must be >= 1, got {v}")
    return args


def read_idx(dir, stem, magic):
    """The data of dir/stem (raw) or dir/stem.gz as a numpy uint8 array, with its dims."""
    raw = os.path.join(dir, stem)
    path = raw if os.path.isfile(raw) else raw + ".gz"
    with (open if path == raw else gzip.open)(path, "rb") as f:
        data = f.read()
    ndim = magic & 0xFF
    (got,) = struct.unpack(">I", data[:4])
    if got != magic:
        raise ValueError(f"{path}: magic {got:#x}, expected {magic:#x}")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} bytes of data, header says {dims}")
    return arr.reshape(dims)


def load(torch, dir, split, limit=None):
    """(images N x 1 x 28 x 28 float32 normalised to [-1, 1], labels N int64)."""
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(dir, f"{prefix}-images-idx3-ubyte", 0x00000803)
    labels = read_idx(dir, f"{prefix}-labels-idx1-ubyte", 0x00000801)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
    x = (x / 255.0 - 0.5) / 0.5
    return x.contiguous(), torch.from_numpy(labels.astype(np.int64))


def main(argv):
    args = parse_args(argv)
    import torch
    from torch import nn

    # Set-up, untimed like `import torch`: constructing the first optimizer lazily imports
    # more of torch (~1.7 s for 2.15 on the dev machine). It is in the process time.
    t_setup = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = lenet5(nn)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(args.seed)

    t_start = time.perf_counter()
    setup_sec = t_start - t_setup
    mnist = os.path.join(args.data, "mnist")
    x_train, y_train = load(torch, mnist, "train", args.limit)
    x_test, y_test = load(torch, mnist, "test")
    load_sec = time.perf_counter() - t_start
    n, b = len(y_train), args.batch

    def evaluate():
        model.eval()
        loss_sum, hits, eb = 0.0, 0, max(b, 500)
        with torch.inference_mode():
            for lo in range(0, len(y_test), eb):
                logits = model(x_test[lo : lo + eb])
                y = y_test[lo : lo + eb]
                loss_sum += float(loss_fn(logits, y)) * len(y)
                hits += int((logits.argmax(1) == y).sum())
        return loss_sum / len(y_test), hits / len(y_test)

    train_sec = eval_sec = own = machine = 0.0
    busy_known = True
    for _ in range(args.epochs):
        model.train()
        loss_sum, hits, steps = 0.0, 0, 0
        m0, c0, t0 = machine_cpu_sec(), time.process_time(), time.perf_counter()
        order = torch.randperm(n, generator=gen)
        for lo in range(0, n, b):
            idx = order[lo : lo + b]
            x, y = x_train[idx], y_train[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            hits += int((logits.argmax(1) == y).sum())
            steps += 1
        t1 = time.perf_counter()
        train_sec += t1 - t0
        own += time.process_time() - c0
        m1 = machine_cpu_sec()
        if m0 is None or m1 is None:
            busy_known = False
        else:
            machine += m1 - m0
        test_loss, test_accuracy = evaluate()
        eval_sec += time.perf_counter() - t1
    total_sec = time.perf_counter() - t_start
    others = max(0.0, (machine - own) / (train_sec * os.cpu_count())) if busy_known else None

    print(
        json.dumps(
            {
                "impl": "pytorch",
                "torch": torch.__version__,
                "torch_source": torch_source(torch),
                "epochs": args.epochs,
                "batch": b,
                "threads": torch.get_num_threads(),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "mkl_num_threads": os.environ.get("MKL_NUM_THREADS"),
                "train_images": n,
                "steps": steps * args.epochs,
                "train_sec": train_sec,
                "total_sec": total_sec,
                "setup_sec": setup_sec,
                "load_sec": load_sec,
                "eval_sec": eval_sec,
                "images_per_sec": n * args.epochs / train_sec,
                "train_loss": loss_sum / steps,
                "train_accuracy": hits / n,
                "test_loss": test_loss,
                "test_accuracy": test_accuracy,
                "others_busy": None if others is None else round(others, 3),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
