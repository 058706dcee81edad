"""Hessian cost and spectrum in PyTorch, the reference side of a goldpan Hessian benchmark.

For each model (lenet5, lenet-base, dtn; definitions in models.py), in eval() mode (dropout off,
batch norm with its running statistics: PyHessian's setting, `hessian.__init__` calls
`model.eval()`), on real MNIST images:

1. grad: one full gradient of the mean cross-entropy over a batch of --batch images w.r.t. all
   trainable parameters (forward + backward, `torch.autograd.grad`), median over --reps;
2. hvp: one exact Hessian-vector product H.v on the same batch, v a fixed random unit vector
   shaped like the parameters (seeded), two ways, median over --reps each:
     jvp              forward-over-reverse: torch.func.jvp(torch.func.grad(loss), (params,), (v,))
                      with torch.func.functional_call;
     double_backward  PyHessian's way: g = autograd.grad(loss, params, create_graph=True), then
                      autograd.grad(g, params, grad_outputs=v) (= d(g.v)/dparams);
   with the ratios hvp/grad. A way that fails for a model is reported in `errors` (its time and
   ratio null), not fatal. Reps interleave the ways, so background load hits all alike; each
   way first runs --warmup times untimed.
   Weight norm (lenet-base, dtn: netC): torch's fused kernel `_weight_norm_interface` (used on
   CPU by nn.utils.parametrizations.weight_norm) has no forward-mode derivative, so `jvp` fails
   there, and its double backward is inexact: derivatives.yaml differentiates it through
   `_weight_norm_differentiable_backward(grad, v, g, norms)` with the saved norms |v| as a
   constant, so the v-v block of the Hessian misses the d|v|/dv terms (gradgradcheck fails;
   ~1% off in Hv's v part, float64 central differences agree with the unfused form to 1e-9).
   For these models two more ways run on a twin of the model whose weight norm is written as
   g * v / |v| with elementary ops (same parameters and values): `jvp_unfused_wn` and
   `double_backward_unfused_wn`, both exact. `hvp_rel_diff` gives |Hv_a - Hv_b| / |Hv_b| for
   every pair of HVP ways that ran.
3. eigen: the top --eig-top (5) Hessian eigenvalues of the mean loss over the first --eig-n
   (1000) training images, streamed in batches of --eig-batch (500): the full-set HVP is the
   batch-size-weighted mean of the batch HVPs (PyHessian's `dataloader_hv_product`, double
   backward), by PyHessian's power iteration with deflation (tol 1e-3, maxIter 100),
   reimplemented below. Weight-normed models use the exact unfused twin unless --eigen-wn fused
   (`weight_norm` in the output). With --lanczos also Lanczos with full reorthogonalisation on
   the same operator, for comparison. `hvps` counts full-set HVPs (each is ceil(n / eig-batch)
   batch HVPs, `batch_hvps`).

Data: MNIST's IDX files in --data/mnist (raw or .gz; default ../shared/data from the repo root),
training split, in file order, pixels /255 then, with --normalize half (default), (x - 0.5)/0.5
as goldpan's training batches and bench/pytorch/mnist_epoch.py do (--normalize none keeps
[0, 1]). dtn takes 3x32x32: the [0, 1] images are resized 28 -> 32 (bilinear, half-pixel
centres, no antialiasing = PIL's bilinear upscale, as goldpan's `load_as`) and the grey channel
replicated to 3, before normalising.

Weights: a fixed torch seed (--seed) per model, or a goldpan checkpoint (--checkpoint
MODEL=PATH, repeatable; a bare PATH when one model is selected): goldpan's `param/<name>` and
`buffer/<name>` tensors mapped onto the nn.Sequential of models.py by GOLDPAN_TO_TORCH below
(same layouts: conv O x I x kH x kW, linear out x in, no transposes; weight-norm g is [10] in
goldpan, [10, 1] in torch). `momentum/*` is ignored. Needs `safetensors` (bench/setup.sh).

Prints progress on stderr and ONE JSON object on stdout:
  {"torch", "torch_source", "threads", "omp_num_threads", "mkl_num_threads", "mode": "eval",
   "normalize", "seed",
   "cases": [{"model", "batch", "params", "checkpoint", "reps", "loss", "grad_s",
              "hvp_jvp_s", "hvp_double_backward_s", "ratio_jvp", "ratio_double_backward",
              [weight-normed models: "hvp_jvp_unfused_wn_s", "ratio_jvp_unfused_wn",
               "hvp_double_backward_unfused_wn_s", "ratio_double_backward_unfused_wn"],
              "hvp_rel_diff": {"a~b": x}, "vHv", "times_s": {way: [s, ...]}, "others_busy",
              "errors": {way: message}}],
   "eigen": [{"model", "n", "batch", "batches", "checkpoint", "weight_norm", "loss", "accuracy",
              "method": "pyhessian-power" | "lanczos", "values", "seconds", "hvps",
              "batch_hvps", "others_busy", + "iterations", "tol", "max_iter" (power) or
              "steps", "residual_bounds", "tol" (lanczos)}]}
Times are seconds. Example:
  bench/.venv/bin/python bench/pytorch/hessian.py --models lenet5,lenet-base,dtn --batch 512 \
      --reps 3 --eig-n 1000 --eig-batch 500 --threads 2
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True  # no bench/pytorch/__pycache__ (not git-ignored)
sys.path.insert(0, HERE)
from lenet5 import machine_cpu_sec, torch_source  # noqa: E402  (same folder)
from mnist_epoch import read_idx  # noqa: E402
from models import MODELS  # noqa: E402

# goldpan parameter/buffer name prefix (crates/core/src/models/{lenet5,shot}.rs) -> module path
# in the nn.Sequential of models.py. Suffixes (.weight, .bias, .running_mean, .running_var) are
# kept; the weight-normalised classifier is special-cased in `torch_key`.
GOLDPAN_TO_TORCH = {
    "lenet5": {"conv1": "0", "conv2": "3", "fc1": "7", "fc2": "9", "fc3": "11"},
    "lenet-base": {
        "conv1": "0.0",
        "conv2": "0.3",
        "bottleneck": "1.0",
        "bottleneck_bn": "1.1",
        "classifier": "2",
    },
    "dtn": {
        "conv1": "0.0",
        "bn1": "0.1",
        "conv2": "0.4",
        "bn2": "0.5",
        "conv3": "0.8",
        "bn3": "0.9",
        "bottleneck": "1.0",
        "bottleneck_bn": "1.1",
        "classifier": "2",
    },
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="lenet5,lenet-base,dtn",
                   help=f"comma-separated, of {','.join(MODELS)}")
    p.add_argument("--batch", type=int, default=512, help="batch of the grad/HVP timings")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs of each way first")
    p.add_argument("--eig-n", type=int, default=1000, help="training images for the eigenvalues")
    p.add_argument("--eig-batch", type=int, default=500)
    p.add_argument("--eig-top", type=int, default=5)
    p.add_argument("--eig-maxiter", type=int, default=100, help="PyHessian's maxIter")
    p.add_argument("--eig-tol", type=float, default=1e-3, help="PyHessian's tol")
    p.add_argument("--skip-eigen", action="store_true")
    p.add_argument("--eigen-wn", choices=("unfused", "fused"), default="unfused",
                   help="weight norm in the eigen HVPs: unfused (exact, default) or torch's fused "
                   "kernel (what stock PyHessian gets; its double backward drops d|v|/dv)")
    p.add_argument("--lanczos", action="store_true", help="also Lanczos top eigenvalues")
    p.add_argument("--lanczos-steps", type=int, default=100, help="at most this many Lanczos steps")
    p.add_argument("--lanczos-tol", type=float, default=1e-3,
                   help="stop when every top Ritz pair's residual bound is below tol * |value|")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"),
                   help="folder that contains mnist/ (default: ../shared/data from the repo root)")
    p.add_argument("--normalize", choices=("half", "none"), default="half",
                   help="half: (x/255 - 0.5)/0.5 as goldpan trains (default); none: x/255")
    p.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=PATH",
                   help="goldpan checkpoint for MODEL (repeatable); a bare PATH if one model")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in args.models:
        if m not in MODELS:
            p.error(f"--models: unknown model {m!r}; known: {','.join(MODELS)}")
    for name in ("batch", "reps", "eig_n", "eig_batch", "eig_top", "eig_maxiter", "threads",
                 "lanczos_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    ckpts = {}
    for item in args.checkpoint:
        model, sep, path = item.partition("=")
        if not sep:
            if len(args.models) != 1:
                p.error("--checkpoint PATH without MODEL= needs exactly one model in --models")
            model, path = args.models[0], item
        if model not in MODELS:
            p.error(f"--checkpoint: unknown model {model!r}")
        ckpts[model] = path
    args.checkpoints = ckpts
    return args


# ------------------------------------------------------------------------------------ data


def load_mnist(torch, data_dir, n, input_shape, normalize):
    """The first n MNIST training images shaped for `input_shape` (C, H, W), and labels."""
    mnist = os.path.join(data_dir, "mnist")
    images = read_idx(mnist, "train-images-idx3-ubyte", 0x00000803)
    labels = read_idx(mnist, "train-labels-idx1-ubyte", 0x00000801)
    if n > len(labels):
        raise ValueError(f"asked for {n} images, MNIST train has {len(labels)}")
    x = torch.from_numpy(images[:n].astype(np.float32)).unsqueeze(1) / 255.0
    c, h, w = input_shape
    if (h, w) != tuple(x.shape[2:]):
        # Upscaling: bilinear with half-pixel centres, edge-clamped = PIL's bilinear resize.
        x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear",
                                            align_corners=False, antialias=False)
    if c == 3:
        x = x.expand(-1, 3, -1, -1)
    elif c != 1:
        raise ValueError(f"input with {c} channels")
    if normalize == "half":
        x = (x - 0.5) / 0.5
    return x.contiguous(), torch.from_numpy(labels[:n].astype(np.int64))


# ------------------------------------------------------------------------------ checkpoints


def torch_key(model_name, goldpan_name, torch_keys):
    """The state_dict key of goldpan's tensor `goldpan_name` for `model_name`."""
    prefix, _, suffix = goldpan_name.partition(".")
    module = GOLDPAN_TO_TORCH[model_name].get(prefix)
    if module is None:
        raise KeyError(f"goldpan tensor {goldpan_name!r} has no counterpart in the torch {model_name}")
    if suffix in ("weight_g", "weight_v"):
        # torch >= 2.1 parametrizations: original0 = g, original1 = v; older: weight_g/weight_v.
        new = f"{module}.parametrizations.weight.original{0 if suffix == 'weight_g' else 1}"
        return new if new in torch_keys else f"{module}.{suffix}"
    return f"{module}.{suffix}"


class _SafetensorsF32:
    """Minimal reader for little-endian f32 safetensors files (what goldpan writes), used when
    the `safetensors` package is missing (e.g. with Debian's torch): an 8-byte LE header length,
    a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the data."""

    def __init__(self, torch, path):
        import struct

        self.torch = torch
        with open(path, "rb") as f:
            data = f.read()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        self.meta = header.pop("__metadata__", None)
        self.header, self.data = header, memoryview(data)[8 + n :]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def metadata(self):
        return self.meta

    def keys(self):
        return list(self.header)

    def get_tensor(self, name):
        info = self.header[name]
        if info["dtype"] != "F32":
            raise ValueError(f"tensor {name}: dtype {info['dtype']}, expected F32")
        lo, hi = info["data_offsets"]
        arr = np.frombuffer(self.data[lo:hi], dtype="<f4").reshape(info["shape"])
        return self.torch.from_numpy(arr.copy())


def open_safetensors(torch, path):
    try:
        from safetensors import safe_open
    except ImportError:
        return _SafetensorsF32(torch, path)
    return safe_open(path, framework="pt")


def load_goldpan_checkpoint(torch, model, model_name, path):
    """Copies a goldpan checkpoint's param/ and buffer/ tensors into `model`. Every trainable
    parameter and batch-norm running statistic of the torch model must be covered, and every
    goldpan tensor used (num_batches_tracked, not in goldpan, is left as is: unused in eval)."""
    state = model.state_dict()
    filled = set()
    with open_safetensors(torch, path) as f:
        meta = f.metadata() or {}
        fmt = meta.get("format")
        if fmt != "goldpan-checkpoint/1":
            raise ValueError(f"{path}: format {fmt!r}, expected 'goldpan-checkpoint/1'")
        cfg = json.loads(meta.get("config", "{}"))
        if cfg.get("model") not in (None, model_name):
            raise ValueError(f"{path}: a {cfg.get('model')} checkpoint, not {model_name}")
        for name in f.keys():
            kind, _, gname = name.partition("/")
            if kind == "momentum":
                continue
            if kind not in ("param", "buffer"):
                raise ValueError(f"{path}: unexpected tensor {name!r}")
            key = torch_key(model_name, gname, state)
            if key not in state:
                raise KeyError(f"{path}: {name} -> {key}, not in the torch model")
            t = f.get_tensor(name)
            want = state[key].shape
            if t.numel() != state[key].numel():
                raise ValueError(f"{path}: {name} has shape {list(t.shape)}, {key} is {list(want)}")
            state[key] = t.reshape(want).to(state[key].dtype)  # only g: [10] -> [10, 1]
            filled.add(key)
    missing = [k for k in state if k not in filled and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{path}: no goldpan tensor for {missing}")
    model.load_state_dict(state, strict=True)
    return {"path": path, "goldpan_model": cfg.get("model"), "dataset": cfg.get("dataset"),
            "epoch": meta.get("epoch"), "global_step": meta.get("global_step")}


# --------------------------------------------------------------------- PyHessian's helpers
# Reimplementation of PyHessian's utils (github.com/amirgholami/PyHessian, pyhessian/utils.py),
# same arithmetic, so that the power iteration below behaves as `hessian.eigenvalues` does.


def group_product(xs, ys):
    return sum((x * y).sum() for x, y in zip(xs, ys))


def group_add(params, update, alpha=1):
    for i, _ in enumerate(params):
        params[i].data.add_(update[i] * alpha)
    return params


def normalization(v):
    s = float(group_product(v, v)) ** 0.5
    return [vi / (s + 1e-6) for vi in v]


def orthnormal(w, v_list):
    for v in v_list:
        w = group_add(w, v, alpha=-group_product(w, v))
    return normalization(w)


# ----------------------------------------------------------------------------------- HVPs


def unfused_weight_norm_copy(torch, model, build_fresh):
    """A copy of `model` whose weight-normalised layers compute w = g * v / |v| (rows) with
    elementary ops instead of torch's fused `_weight_norm_interface`, which has no forward-mode
    derivative (so torch.func.jvp fails on the stock SHOT nets). Same parameter names, same
    values, same function; only the kernel differs. None if the model has no weight norm."""
    from torch.nn.utils import parametrize

    class WeightNormUnfused(torch.nn.Module):
        def forward(self, g, v):  # original0 = g, original1 = v, as weight_norm names them
            dims = tuple(range(1, v.dim()))
            return v * (g / torch.linalg.vector_norm(v, dim=dims, keepdim=True))

        def right_inverse(self, w):
            dims = tuple(range(1, w.dim()))
            return torch.linalg.vector_norm(w, dim=dims, keepdim=True), w

    # A fresh build, not copy.deepcopy: a deep copy shares the parametrized module's injected
    # class, and removing the parametrization from the copy would strip `weight` off the original.
    with torch.random.fork_rng():
        twin = build_fresh()
    found = False
    for m in twin.modules():
        plist = getattr(m, "parametrizations", None)
        if plist is not None and "weight" in plist:
            if type(plist["weight"][0]).__name__ != "_WeightNorm":
                continue
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
            parametrize.register_parametrization(m, "weight", WeightNormUnfused(), unsafe=True)
            found = True
    if not found:
        return None
    twin.load_state_dict(model.state_dict(), strict=True)  # the exact g and v, not re-derived
    return twin.eval()


def make_ways(torch, model, params, x, y):
    """The three timed computations on one batch, each returning a list of tensors."""
    import torch.nn.functional as F

    def grad():
        loss = F.cross_entropy(model(x), y)
        return list(torch.autograd.grad(loss, params))

    def double_backward(v):
        loss = F.cross_entropy(model(x), y)
        g = torch.autograd.grad(loss, params, create_graph=True)
        hv = torch.autograd.grad(g, params, grad_outputs=v, allow_unused=True)
        return [torch.zeros_like(p) if h is None else h for p, h in zip(params, hv)]

    names = [n for n, p in model.named_parameters() if p.requires_grad]
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def loss_of(pdict):
        out = torch.func.functional_call(model, ({**pdict, **frozen}, buffers), (x,))
        return F.cross_entropy(out, y)

    grad_fn = torch.func.grad(loss_of)

    def jvp(v):
        primal = {n: p.detach() for n, p in zip(names, params)}
        tangent = dict(zip(names, v))
        _, hv = torch.func.jvp(grad_fn, (primal,), (tangent,))
        return [hv[n] for n in names]

    return grad, jvp, double_backward


def dataset_hvp(torch, model, params, batches, v):
    """PyHessian's `dataloader_hv_product`: the HVP of the mean loss over all batches, as the
    batch-size-weighted mean of per-batch double-backward HVPs; returns (v.Hv, Hv)."""
    import torch.nn.functional as F

    num_data = 0
    THv = [torch.zeros(p.size()) for p in params]
    for inputs, targets in batches:
        loss = F.cross_entropy(model(inputs), targets)
        # PyHessian: loss.backward(create_graph=True) then the .grad's; autograd.grad is the
        # same graph without leaving create_graph'd .grad attributes behind.
        gradsH = torch.autograd.grad(loss, params, create_graph=True)
        Hv = torch.autograd.grad(gradsH, params, grad_outputs=v, only_inputs=True,
                                 retain_graph=False, allow_unused=True)
        Hv = [torch.zeros_like(p) if h is None else h for p, h in zip(params, Hv)]
        THv = [THv1 + Hv1 * float(inputs.size(0)) + 0.0 for THv1, Hv1 in zip(THv, Hv)]
        num_data += float(inputs.size(0))
    THv = [THv1 / float(num_data) for THv1 in THv]
    eigenvalue = group_product(THv, v).item()
    return eigenvalue, THv


def pyhessian_eigenvalues(torch, hvp, params, maxIter=100, tol=1e-3, top_n=1):
    """Reimplementation of PyHessian's `hessian.eigenvalues` (pyhessian/hessian.py, full-dataset
    branch): power iteration with deflation, the same loop line for line, including its
    quirks: convergence is |lambda_prev - lambda| / (|lambda_prev| + 1e-6) < tol, the value
    kept is the previous iterate's, and the stored eigenvector is normalization(Hv) of the last
    iteration (deflated only at the next use). Random starts use the global torch RNG, as there.
    Returns (eigenvalues, eigenvectors, iterations per eigenvalue)."""
    assert top_n >= 1
    eigenvalues, eigenvectors, iterations = [], [], []
    computed_dim = 0
    while computed_dim < top_n:
        eigenvalue = None
        v = [torch.randn(p.size()) for p in params]  # generate random vector
        v = normalization(v)  # normalize the vector
        its = 0
        for i in range(maxIter):
            v = orthnormal(v, eigenvectors)
            tmp_eigenvalue, Hv = hvp(v)
            its += 1
            v = normalization(Hv)
            if eigenvalue is None:
                eigenvalue = tmp_eigenvalue
            else:
                if abs(eigenvalue - tmp_eigenvalue) / (abs(eigenvalue) + 1e-6) < tol:
                    break
                else:
                    eigenvalue = tmp_eigenvalue
        eigenvalues.append(eigenvalue)
        eigenvectors.append(v)
        iterations.append(its)
        computed_dim += 1
    return eigenvalues, eigenvectors, iterations


def lanczos_top(torch, hvp, params, top, steps, tol, seed):
    """Lanczos on the (symmetric) full-set Hessian with full reorthogonalisation (classical
    Gram-Schmidt, twice, against every previous basis vector), float32 basis, float64 scalars;
    Ritz values from torch.linalg.eigh of the tridiagonal. Stops after `steps` HVPs, or once the
    `top` largest-magnitude Ritz values all have residual bound |beta_{j+1} s_{j,i}| <=
    tol * |theta_i| (or the Krylov space is exhausted). Returns (values by decreasing
    magnitude, HVPs, residual bounds)."""
    sizes = [p.numel() for p in params]
    shapes = [p.shape for p in params]
    n = sum(sizes)

    def unflat(vec):
        return [c.view(s) for c, s in zip(torch.split(vec, sizes), shapes)]

    def flat(lst):
        return torch.cat([t.reshape(-1) for t in lst])

    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, generator=g)
    q = q / q.norm()
    Q = [q]
    alphas, betas = [], []
    values, bounds = [], []
    m = min(steps, n)
    for j in range(m):
        _, hv = hvp(unflat(Q[j]))
        w = flat(hv)
        alpha = float(torch.dot(w, Q[j]))
        alphas.append(alpha)
        for _ in range(2):  # full reorthogonalisation, twice for stability
            B = torch.stack(Q)
            w = w - B.t() @ (B @ w)
        beta = float(w.norm())
        T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.tensor(betas, dtype=torch.float64)
            T += torch.diag(off, 1) + torch.diag(off, -1)
        theta, S = torch.linalg.eigh(T)
        order = torch.argsort(theta.abs(), descending=True)[:top]
        values = [float(theta[i]) for i in order]
        bounds = [abs(beta * float(S[-1, i])) for i in order]
        if len(values) >= min(top, n) and all(b <= tol * abs(v) for b, v in zip(bounds, values)):
            break
        if beta < 1e-10 or j == m - 1:
            break
        betas.append(beta)
        Q.append(w / beta)
    return values, len(alphas), bounds


# ---------------------------------------------------------------------------------- main


def rel_diff(torch, a, b):
    num = math.sqrt(sum(float(((x - y) ** 2).sum()) for x, y in zip(a, b)))
    den = math.sqrt(sum(float((y**2).sum()) for y in b))
    return num / den if den > 0 else None


def err_str(e):
    s = f"{type(e).__name__}: {e}"
    return s if len(s) <= 600 else s[:600] + "..."


def build(torch, nn, name, seed, checkpoint):
    spec = MODELS[name]
    torch.manual_seed(seed)
    model = spec.build(nn)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == spec.params, (name, n_params, spec.params)
    info = load_goldpan_checkpoint(torch, model, name, checkpoint) if checkpoint else None
    model.eval()
    return model, spec, n_params, info


def time_case(torch, nn, args, name):
    model, spec, n_params, ck = build(torch, nn, name, args.seed, args.checkpoints.get(name))
    x, y = load_mnist(torch, args.data, args.batch, spec.input_shape, args.normalize)
    params = [p for p in model.parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(args.seed + 1)
    v = normalization([torch.randn(p.shape, generator=g) for p in params])
    grad, jvp, double_backward = make_ways(torch, model, params, x, y)
    ways = {"grad": grad, "jvp": lambda: jvp(v), "double_backward": lambda: double_backward(v)}
    twin = unfused_weight_norm_copy(torch, model, lambda: spec.build(nn))
    if twin is not None:  # same parameters, in the same order: v applies as is
        twin_params = [p for p in twin.parameters() if p.requires_grad]
        _, jvp_u, double_backward_u = make_ways(torch, twin, twin_params, x, y)
        ways["jvp_unfused_wn"] = lambda: jvp_u(v)
        ways["double_backward_unfused_wn"] = lambda: double_backward_u(v)
    errors, results, times = {}, {}, {k: [] for k in ways}
    for k, f in ways.items():  # warm-up, and the first error if any
        try:
            for _ in range(max(1, args.warmup)):
                results[k] = f()
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            errors[k] = err_str(e)
            log(f"  {name}: {k} failed: {errors[k]}")
    m0, c0, t0 = machine_cpu_sec(), time.process_time(), time.perf_counter()
    for r in range(args.reps):
        for k, f in ways.items():
            if k in errors:
                continue
            t = time.perf_counter()
            out = f()
            float(out[-1].sum())  # CPU is synchronous; this just touches the result
            times[k].append(time.perf_counter() - t)
        log(f"  {name} rep {r + 1}/{args.reps}: "
            + ", ".join(f"{k} {times[k][-1]:.4f}s" for k in ways if k not in errors))
    wall = time.perf_counter() - t0
    own, m1 = time.process_time() - c0, machine_cpu_sec()
    others = None if m0 is None else max(0.0, (m1 - m0 - own) / (wall * os.cpu_count()))
    med = {k: statistics.median(t) if t else None for k, t in times.items()}

    def ratio(k):
        return med[k] / med["grad"] if med[k] is not None and med["grad"] else None

    # Pairwise |Hv_a - Hv_b| / |Hv_b| of the HVP ways that ran.
    hv_ways = [k for k in ways if k != "grad" and k in results]
    diffs = {f"{a}~{b}": rel_diff(torch, results[a], results[b])
             for i, a in enumerate(hv_ways) for b in hv_ways[i + 1:]}
    with torch.no_grad():  # evaluation only, no derivative needed
        loss = float(torch.nn.functional.cross_entropy(model(x), y))
    case = {
        "model": name,
        "batch": args.batch,
        "params": n_params,
        "checkpoint": ck,
        "reps": args.reps,
        "loss": loss,
        "grad_s": med["grad"],
        "hvp_jvp_s": med["jvp"],
        "hvp_double_backward_s": med["double_backward"],
        "ratio_jvp": ratio("jvp"),
        "ratio_double_backward": ratio("double_backward"),
    }
    if twin is not None:
        for k in ("jvp_unfused_wn", "double_backward_unfused_wn"):
            case[f"hvp_{k}_s"] = med[k]
            case[f"ratio_{k}"] = ratio(k)
    exact = "double_backward_unfused_wn" if twin is not None else "double_backward"
    case.update({
        "hvp_rel_diff": diffs,
        "vHv": float(group_product(results[exact], v)) if exact in results else None,
        "times_s": times,
        "others_busy": None if others is None else round(others, 3),
        "errors": errors,
    })
    return case


def eigen_case(torch, nn, args, name):
    model, spec, _, ck = build(torch, nn, name, args.seed, args.checkpoints.get(name))
    x, y = load_mnist(torch, args.data, args.eig_n, spec.input_shape, args.normalize)
    batches = [(x[i : i + args.eig_batch], y[i : i + args.eig_batch])
               for i in range(0, args.eig_n, args.eig_batch)]
    wn = None
    if args.eigen_wn == "unfused":
        twin = unfused_weight_norm_copy(torch, model, lambda: spec.build(nn))
        if twin is not None:
            model, wn = twin, "unfused"
    elif any(type(m).__name__.startswith("Parametrized") or hasattr(m, "weight_g")
             for m in model.modules()):
        wn = "fused"
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        loss_sum, hits = 0.0, 0
        for xb, yb in batches:
            out = model(xb)
            loss_sum += float(torch.nn.functional.cross_entropy(out, yb, reduction="sum"))
            hits += int((out.argmax(1) == yb).sum())
    common = {"model": name, "n": args.eig_n, "batch": min(args.eig_batch, args.eig_n),
              "batches": len(batches), "checkpoint": ck, "weight_norm": wn,
              "loss": loss_sum / args.eig_n, "accuracy": hits / args.eig_n}
    count = [0]

    def hvp(v):
        count[0] += 1
        return dataset_hvp(torch, model, params, batches, v)

    out = []
    torch.manual_seed(args.seed)  # PyHessian draws its start vectors from the global RNG
    count[0] = 0
    m0, c0, t0 = machine_cpu_sec(), time.process_time(), time.perf_counter()
    values, _, its = pyhessian_eigenvalues(torch, hvp, params, maxIter=args.eig_maxiter,
                                           tol=args.eig_tol, top_n=args.eig_top)
    wall = time.perf_counter() - t0
    own, m1 = time.process_time() - c0, machine_cpu_sec()
    log(f"  {name} power: {values} in {wall:.2f}s, {count[0]} HVPs (iterations {its})")
    out.append({**common, "method": "pyhessian-power", "values": values, "seconds": wall,
                "hvps": count[0], "batch_hvps": count[0] * len(batches), "iterations": its,
                "tol": args.eig_tol, "max_iter": args.eig_maxiter,
                "others_busy": None if m0 is None
                else round(max(0.0, (m1 - m0 - own) / (wall * os.cpu_count())), 3)})
    if args.lanczos:
        count[0] = 0
        m0, c0, t0 = machine_cpu_sec(), time.process_time(), time.perf_counter()
        values, steps, bounds = lanczos_top(torch, hvp, params, args.eig_top, args.lanczos_steps,
                                            args.lanczos_tol, args.seed)
        wall = time.perf_counter() - t0
        own, m1 = time.process_time() - c0, machine_cpu_sec()
        log(f"  {name} lanczos: {values} in {wall:.2f}s, {count[0]} HVPs")
        out.append({**common, "method": "lanczos", "values": values, "seconds": wall,
                    "hvps": count[0], "batch_hvps": count[0] * len(batches), "steps": steps,
                    "residual_bounds": bounds, "tol": args.lanczos_tol,
                    "others_busy": None if m0 is None
                    else round(max(0.0, (m1 - m0 - own) / (wall * os.cpu_count())), 3)})
    return out


def import_torch(threads):
    """torch and torch.nn, on `threads` threads (OpenMP and MKL too, unless the caller set them)."""
    # torch reads these at import; bench/run.mjs sets them too. Do not override the caller's.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    return torch, nn


def main(argv):
    args = parse_args(argv)
    torch, nn = import_torch(args.threads)
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads, models {args.models}")
    cases, eigen = [], []
    for name in args.models:
        log(f"{name}: grad / HVP timings at batch {args.batch}")
        cases.append(time_case(torch, nn, args, name))
    if not args.skip_eigen:
        for name in args.models:
            log(f"{name}: top-{args.eig_top} eigenvalues over {args.eig_n} images")
            eigen.extend(eigen_case(torch, nn, args, name))
    print(json.dumps({
        "torch": torch.__version__,
        "torch_source": torch_source(torch),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "mkl_num_threads": os.environ.get("MKL_NUM_THREADS"),
        "mode": "eval",
        "normalize": args.normalize,
        "seed": args.seed,
        "cases": cases,
        "eigen": eigen,
    }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
