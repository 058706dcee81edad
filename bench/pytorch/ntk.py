"""Empirical NTK of LeNet5 in PyTorch, the reference side of goldpan's NTK benchmark
(crates/core/examples/ntk_bench.rs).

The kernel is that of the logits f(x) in R^C (C = 10) w.r.t. all 44,426 trainable parameters,
the model in eval() mode: Theta(x, x') = J(x) J(x')^T, J(x) = df(x)/dtheta in R^{C x P}. Built
the neural-tangents / torch.func way:

1. jacobian: per-sample Jacobians `torch.func.vmap(torch.func.jacrev(f), in_dims=(None, 0))`
   with f(params, x) = `torch.func.functional_call(model, params, x[None])[0]`, in chunks of
   samples (--jac-chunk, default: as many as keep one chunk's Jacobian under --jac-chunk-gb,
   1 GB; for LeNet5 that is 562 samples, 1.78 MB each), float32, written into one N*C x P
   float32 matrix J, row n*C + c (goldpan's row order);
2. contraction: the full kernel Theta = J J^T (NC x NC, row/column n*C + c), or the trace
   kernel sum_c J_c J_c^T (N x N; = J' J'^T with J' = J viewed as N x CP), one float32 matmul
   (MKL sgemm, as neural-tangents contracts in the Jacobian's dtype; --kernel-dtype float64
   contracts in float64 instead, goldpan accumulates its kernel in f64), then cast to float64;
3. eigen: all eigenvalues by `torch.linalg.eigvalsh` on the float64 kernel (LAPACK syevd), J
   and the float32 kernel freed first.

Cases (--cases, comma-separated; the goldpan bench's names):
  full-500, full-2000   full kernel + all eigenvalues, N = 500 / 2000 (shape 5000^2 / 20000^2);
  trace-2000            trace kernel + all eigenvalues, N = 2000 (shape 2000^2);
  top10-10000           top-10 eigenvalues of the full kernel at N = 10,000, matrix-free: the
                        100,000 x 100,000 kernel (80 GB in float64) is never formed. Lanczos
                        with full reorthogonalisation (float64 basis, classical Gram-Schmidt
                        twice) on NTK-vector products Theta u = J (J^T u): J^T u summed over
                        batches of --batch (500) by `torch.func.vjp`, then J v batch by batch
                        by `torch.func.jvp`, both over `functional_call` (recomputed per
                        product, as goldpan's NtkOperator; float32 model, float64 vectors). Stops
                        when the top-10 Ritz pairs' relative residuals |beta_m s_m,i| /
                        max(|theta_i|, sqrt(eps) ||T||) are all <= --lanczos-tol (1e-3) or after
                        --lanczos-steps (100) products (goldpan's EigenConfig defaults); start
                        vector Rademacher (seeded). Its trace, sum of ||df_c(x_n)/dtheta||^2,
                        comes from streamed per-sample Jacobians (step 1, not stored), timed
                        apart as `trace_s` and NOT in `seconds` (goldpan reports no trace
                        there); --no-top10-trace skips it.
  Generally `full-N`, `trace-N` and `topK-N`. A dense case whose estimated peak memory
  (J + float32 kernel + float64 kernel + eigvalsh's copy) exceeds --max-mem-gb (default 80% of
  MemAvailable) is not run: its entry carries an `error` saying so.

Time limit: each case runs in its own child process (multiprocessing, spawn: fresh memory per
case); a case running past --max-seconds (900) is stopped (cooperatively between chunks and
Lanczos steps, else the child is killed, e.g. inside eigvalsh) and reported with an `error`
and the phase times it had finished. --in-process runs cases in this process (the limit then
only cooperative). Before its timer starts each case warms up untimed (one Jacobian chunk of 2
samples, or one NTK-vector product on 2 samples), so one-time torch.func set-up is not timed.

Data: the first N MNIST training images (file order) from --data/mnist (IDX, raw or .gz;
default /work/shared/data), pixels (x/255 - 0.5)/0.5 as goldpan's batches. --n-scale X
multiplies every case's N (floor, at least 5; as goldpan's ntk_bench) for smoke runs.
Weights: a goldpan lenet5 checkpoint (--checkpoint PATH; param/ tensors mapped as in
hessian.py) or torch's default init under --seed.

Prints progress on stderr and ONE JSON object on stdout:
  {"torch", "torch_source", "threads", "omp_num_threads", "mkl_num_threads", "model": "lenet5",
   "params", "mode": "eval", "normalize": "half", "seed", "checkpoint", "jacobian_dtype":
   "float32", "kernel_dtype", "eigen_dtype": "float64", "max_seconds",
   "cases": [{"case", "n", "kernel": "full"|"trace", "shape": [rows, cols],
              "method": "jacobian-eigvalsh"|"ntvp-lanczos", "seconds" (jacobian_s +
              contraction_s + eigen_s), "jacobian_s", "contraction_s", "eigen_s",
              "top10" (largest first), "trace", "others_busy", "peak_rss_gb",
              dense: "jac_chunk", "jacobian_gb", "min_eigenvalue";
              lanczos: "batch", "products", "steps", "converged", "residuals", "tol",
                       "trace_s" (null with --no-top10-trace);
              "error" (only when the case failed, was refused or aborted)}]}
Times are wall seconds. Example:
  bench/.venv/bin/python bench/pytorch/ntk.py --cases full-500 --threads 2 \
      --checkpoint runs/eq3-true/last.safetensors
"""

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no bench/pytorch/__pycache__ (not git-ignored)
sys.path.insert(0, HERE)
from hessian import err_str, import_torch, load_goldpan_checkpoint, load_mnist, log  # noqa: E402  (same folder)
from lenet5 import machine_cpu_sec, torch_source  # noqa: E402
from models import MODELS  # noqa: E402

MODEL = "lenet5"
DEFAULT_CASES = "full-500,full-2000,trace-2000,top10-10000"
GB = 1e9


def mem_available():
    """MemAvailable in bytes (Linux), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_gb():
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB, 3)
    except Exception:  # noqa: BLE001
        return None


def parse_case(name, scale):
    m = re.fullmatch(r"(full|trace|top(\d+))-(\d+)", name)
    if not m:
        raise ValueError(f"case {name!r}: expected full-N, trace-N or topK-N")
    n = max(5, int(int(m.group(3)) * scale))
    if m.group(2):
        return {"case": name, "kind": "top", "k": int(m.group(2)), "n": n}
    return {"case": name, "kind": m.group(1), "n": n}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=DEFAULT_CASES, help=f"comma-separated (default {DEFAULT_CASES})")
    p.add_argument("--n-scale", type=float, default=1.0,
                   help="multiply every case's N by this (floor, min 5), for smoke runs")
    p.add_argument("--max-seconds", type=float, default=900.0, help="time limit per case")
    p.add_argument("--max-mem-gb", type=float, default=None,
                   help="refuse a dense case whose estimated peak exceeds this (default: 80%% of "
                   "MemAvailable)")
    p.add_argument("--jac-chunk", type=int, default=None,
                   help="samples per Jacobian chunk (default: from --jac-chunk-gb)")
    p.add_argument("--jac-chunk-gb", type=float, default=1.0,
                   help="bound on one chunk's float32 Jacobian, GB (default 1)")
    p.add_argument("--kernel-dtype", choices=("float32", "float64"), default="float32",
                   help="dtype of the contraction J J^T (the eigen step is float64 either way)")
    p.add_argument("--batch", type=int, default=500, help="batch of the NTK-vector products")
    p.add_argument("--lanczos-steps", type=int, default=100, help="at most this many products")
    p.add_argument("--lanczos-tol", type=float, default=1e-3, help="relative residual tolerance")
    p.add_argument("--no-top10-trace", action="store_true",
                   help="skip the exact trace (streamed Jacobians) of the matrix-free cases")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="/work/shared/data", help="folder that contains mnist/")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="goldpan lenet5 checkpoint (a bare PATH, or lenet5=PATH)")
    p.add_argument("--in-process", action="store_true",
                   help="run cases in this process (time limit only checked between steps)")
    args = p.parse_args(argv)
    try:
        args.case_list = [parse_case(c.strip(), args.n_scale)
                          for c in args.cases.split(",") if c.strip()]
    except ValueError as e:
        p.error(f"--cases: {e}")
    if args.checkpoint and args.checkpoint.startswith(f"{MODEL}="):
        args.checkpoint = args.checkpoint[len(MODEL) + 1:]
    for name in ("batch", "lanczos_steps", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.jac_chunk is not None and args.jac_chunk < 1:
        p.error("--jac-chunk must be >= 1")
    if args.n_scale <= 0 or args.max_seconds <= 0:
        p.error("--n-scale and --max-seconds must be > 0")
    return args


# ------------------------------------------------------------------------------- the case


class Aborted(Exception):
    pass


class Clock:
    """Phase times of one case, reported to the parent as they finish, and the deadline."""

    def __init__(self, max_seconds, report):
        self.max_seconds, self.report = max_seconds, report
        self.t0 = None
        self.phases = {}

    def start(self):
        self.t0 = time.perf_counter()
        self.report(("started", None))

    def check(self, where):
        if time.perf_counter() - self.t0 > self.max_seconds:
            raise Aborted(f"aborted: past --max-seconds {self.max_seconds:g} during {where}")

    def phase(self, name, seconds):
        self.phases[name] = seconds
        self.report(("phase", {name: seconds}))


def build_model(torch, nn, args):
    spec = MODELS[MODEL]
    torch.manual_seed(args.seed)
    model = spec.build(nn)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == spec.params, (n_params, spec.params)
    ck = load_goldpan_checkpoint(torch, model, MODEL, args.checkpoint) if args.checkpoint else None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    params = {k: v.detach() for k, v in model.named_parameters()}
    return model, spec, params, n_params, ck


def dense_memory(kind, n, c, p, kernel_dtype):
    """Estimated peak bytes of a dense case: J (f32) + kernel (contraction dtype) at the
    contraction, then the f64 kernel + eigvalsh's f64 copy at the eigen step."""
    rows = n * c if kind == "full" else n
    j = n * c * p * 4
    k_contract = rows * rows * (4 if kernel_dtype == "float32" else 8)
    j64 = j * 2 if kernel_dtype == "float64" else 0
    contraction = j + j64 + k_contract
    eigen = 2 * rows * rows * 8 + (k_contract if kernel_dtype == "float32" else 0)
    return max(contraction, eigen), rows


def jacobian_fn(torch, model, params):
    from torch.func import functional_call, jacrev, vmap

    names = list(params)

    def f(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

    jac = vmap(jacrev(f), in_dims=(None, 0))

    def chunk_rows(x):
        """The chunk's Jacobian as (B*C) x P float32, row b*C + c, columns in parameter order."""
        j = jac(params, x)
        b = x.shape[0]
        return torch.cat([j[k].reshape(b, -1, params[k].numel()) for k in names], dim=2)

    return chunk_rows


def run_dense(torch, model, params, x, case, args, clock, n_params, classes):
    n, kind = case["n"], case["kind"]
    per_sample = classes * n_params * 4
    chunk = args.jac_chunk or max(1, int(args.jac_chunk_gb * GB // per_sample))
    chunk = min(chunk, n)
    rows_of = jacobian_fn(torch, model, params)
    rows_of(x[:2])  # warm-up, untimed
    out = {"jac_chunk": chunk, "jacobian_gb": round(n * per_sample / GB, 3)}
    clock.start()
    t = time.perf_counter()
    J = torch.empty(n, classes, n_params, dtype=torch.float32)
    for i in range(0, n, chunk):
        J[i:i + chunk] = rows_of(x[i:i + chunk])
        clock.check(f"the Jacobian ({i + chunk}/{n} samples)")
        log(f"    jacobian {min(i + chunk, n)}/{n} samples, {time.perf_counter() - t:.1f}s")
    jacobian_s = time.perf_counter() - t
    clock.phase("jacobian_s", jacobian_s)

    t = time.perf_counter()
    A = J.view(n * classes, n_params) if kind == "full" else J.view(n, classes * n_params)
    if args.kernel_dtype == "float64":
        A = A.double()
    del J
    K = A @ A.T
    del A
    K = K.double()
    contraction_s = time.perf_counter() - t
    clock.phase("contraction_s", contraction_s)
    clock.check("the contraction")
    log(f"    kernel {tuple(K.shape)} in {contraction_s:.2f}s")

    t = time.perf_counter()
    trace = float(K.diagonal().sum())
    ev = torch.linalg.eigvalsh(K)  # ascending, float64
    eigen_s = time.perf_counter() - t
    clock.phase("eigen_s", eigen_s)
    top = ev.flip(0)[:10].tolist()
    out.update({"shape": list(K.shape), "jacobian_s": jacobian_s, "contraction_s": contraction_s,
                "eigen_s": eigen_s, "seconds": jacobian_s + contraction_s + eigen_s,
                "top10": top, "trace": trace, "min_eigenvalue": float(ev[0])})
    return out


def ntvp_operator(torch, model, params, batches, classes):
    """u (N*C float64, row n*C + c) -> Theta u = J (J^T u), float64; one vjp per batch for
    J^T u, then one jvp per batch for J v (recomputed every product)."""
    from torch.func import functional_call, jvp, vjp

    names = list(params)

    def product(u):
        u = u.view(-1, classes).to(torch.float32)
        acc = {k: torch.zeros_like(params[k], dtype=torch.float64) for k in names}
        at = 0
        for xb in batches:
            b = xb.shape[0]
            _, pull = vjp(lambda p, xb=xb: functional_call(model, p, (xb,)), params)
            (g,) = pull(u[at:at + b])
            for k in names:
                acc[k] += g[k]
            at += b
        v = {k: acc[k].to(torch.float32) for k in names}
        outs = []
        for xb in batches:
            _, tangent = jvp(lambda p, xb=xb: functional_call(model, p, (xb,)), (params,), (v,))
            outs.append(tangent.reshape(-1))
        return torch.cat(outs).double()

    return product


def lanczos_top(torch, op, dim, k, steps, tol, seed, clock):
    """Top-k (algebraically largest) eigenvalues of the PSD operator by Lanczos with full
    reorthogonalisation. Returns (values descending, residuals, steps, converged)."""
    g = torch.Generator().manual_seed(seed)
    q = (torch.randint(0, 2, (dim,), generator=g, dtype=torch.float64) * 2 - 1) / math.sqrt(dim)
    Q = torch.empty(min(steps, dim) + 1, dim, dtype=torch.float64)
    Q[0] = q
    alphas, betas = [], []
    values, res, converged = [], [], False
    m = min(steps, dim)
    eps = torch.finfo(torch.float64).eps
    for j in range(m):
        w = op(Q[j])
        alpha = float(torch.dot(w, Q[j]))
        alphas.append(alpha)
        B = Q[: j + 1]
        for _ in range(2):  # classical Gram-Schmidt, twice
            w = w - B.T @ (B @ w)
        beta = float(w.norm())
        T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.tensor(betas, dtype=torch.float64)
            T += torch.diag(off, 1) + torch.diag(off, -1)
        theta, S = torch.linalg.eigh(T)
        tnorm = float(theta.abs().max())
        order = torch.argsort(theta, descending=True)[:k]
        values = [float(theta[i]) for i in order]
        res = [abs(beta * float(S[-1, i])) / max(abs(float(theta[i])), math.sqrt(eps) * tnorm)
               for i in order]
        log(f"    lanczos step {j + 1}: top {values[0]:.6g}, max residual {max(res):.3g}, "
            f"{time.perf_counter() - clock.t0:.1f}s")
        if len(values) >= k and all(r <= tol for r in res):
            converged = True
            break
        if beta < 1e-10 * max(tnorm, 1e-300) or j == m - 1:
            converged = converged or len(alphas) == dim
            break
        clock.check(f"Lanczos (step {j + 1})")
        betas.append(beta)
        Q[j + 1] = w / beta
    return values, res, len(alphas), converged


def run_lanczos(torch, model, params, x, case, args, clock, n_params, classes):
    n, k = case["n"], case["k"]
    dim = n * classes
    batches = list(torch.split(x, args.batch))
    op_small = ntvp_operator(torch, model, params, [x[:2]], classes)
    op_small(torch.ones(2 * classes, dtype=torch.float64))  # warm-up, untimed
    op = ntvp_operator(torch, model, params, batches, classes)
    count = [0]

    def counted(u):
        count[0] += 1
        return op(u)

    clock.start()
    t = time.perf_counter()
    values, res, steps, converged = lanczos_top(torch, counted, dim, k, args.lanczos_steps,
                                                args.lanczos_tol, args.seed, clock)
    eigen_s = time.perf_counter() - t
    clock.phase("eigen_s", eigen_s)
    out = {"shape": [dim, dim], "batch": min(args.batch, n), "jacobian_s": None,
           "contraction_s": None, "eigen_s": eigen_s, "seconds": eigen_s, "top10": values,
           "products": count[0], "steps": steps, "converged": converged, "residuals": res,
           "tol": args.lanczos_tol, "trace": None, "trace_s": None}
    if not args.no_top10_trace:
        t = time.perf_counter()
        rows_of = jacobian_fn(torch, model, params)
        chunk = args.jac_chunk or max(1, int(args.jac_chunk_gb * GB // (classes * n_params * 4)))
        trace = 0.0
        for i in range(0, n, chunk):
            trace += float(rows_of(x[i:i + chunk]).double().square().sum())
            clock.check(f"the trace's Jacobians ({min(i + chunk, n)}/{n} samples)")
        out["trace"], out["trace_s"] = trace, time.perf_counter() - t
        log(f"    trace {trace:.6g} in {out['trace_s']:.1f}s")
    return out


def run_case(args, case, report):
    """One case, in whichever process; returns its JSON entry (errors included)."""
    import warnings

    # torch.func's jvp scripts a helper on first use; torch 2.15 warns that jit is deprecated.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated")
    torch, nn = import_torch(args.threads)
    kernel = "trace" if case["kind"] == "trace" else "full"
    n = case["n"]
    entry = {"case": case["case"], "n": n, "kernel": kernel,
             "method": "ntvp-lanczos" if case["kind"] == "top" else "jacobian-eigvalsh"}
    clock = Clock(args.max_seconds, report)
    m0 = c0 = w0 = None
    try:
        model, spec, params, n_params, _ = build_model(torch, nn, args)
        classes = spec.classes
        if case["kind"] == "top":
            if case["k"] > n * classes:
                raise ValueError(f"top-{case['k']} of a {n * classes}-dimensional kernel")
        else:
            need, rows = dense_memory(case["kind"], n, classes, n_params, args.kernel_dtype)
            entry["shape"] = [rows, rows]
            budget = args.max_mem_gb * GB if args.max_mem_gb else (mem_available() or 0) * 0.8
            if budget and need > budget:
                raise MemoryError(
                    f"not run: the {kernel} kernel {rows}x{rows} needs ~{need / GB:.1f} GB "
                    f"(Jacobian {n * classes * n_params * 4 / GB:.1f} GB float32 + kernel "
                    f"float32/float64 + eigvalsh's copy), budget {budget / GB:.1f} GB; use a "
                    "topK-N case (matrix-free Lanczos) instead")
        x, _ = load_mnist(torch, args.data, n, spec.input_shape, "half")
        m0, c0, w0 = machine_cpu_sec(), time.process_time(), time.perf_counter()
        run = run_lanczos if case["kind"] == "top" else run_dense
        entry.update(run(torch, model, params, x, case, args, clock, n_params, classes))
    except (Aborted, MemoryError, Exception) as e:  # noqa: BLE001 - reported, not fatal
        entry["error"] = str(e) if isinstance(e, (Aborted, MemoryError)) else err_str(e)
        entry.update({k: entry.get(k, clock.phases.get(k)) for k in
                      ("jacobian_s", "contraction_s", "eigen_s")})
        entry.setdefault("seconds", None)
        entry.setdefault("top10", None)
        entry.setdefault("trace", None)
        log(f"  {case['case']}: {entry['error']}")
    if w0 is not None:
        wall = time.perf_counter() - w0
        own, m1 = time.process_time() - c0, machine_cpu_sec()
        entry["others_busy"] = (None if m0 is None or wall <= 0 else
                                round(max(0.0, (m1 - m0 - own) / (wall * os.cpu_count())), 3))
    entry["peak_rss_gb"] = peak_rss_gb()
    return entry


# ------------------------------------------------------------------------- child processes


def _child(args, case, conn):
    try:
        entry = run_case(args, case, conn.send)
    except BaseException as e:  # noqa: BLE001
        entry = {"case": case["case"], "n": case["n"], "error": err_str(e)}
    conn.send(("done", entry))
    conn.close()


def run_case_in_child(args, case, setup_limit=300.0):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(args, case, child), daemon=True)
    proc.start()
    child.close()
    phases, started, entry, why = {}, None, None, None
    limit = setup_limit
    while entry is None:
        wait = (limit - (time.perf_counter() - started)) if started else limit
        if wait <= 0 or not parent.poll(wait):
            if parent.poll(0):
                continue
            phase = next((p for p in ("jacobian_s", "contraction_s", "eigen_s")
                          if p not in phases), "eigen_s")
            why = (f"aborted: past --max-seconds {args.max_seconds:g}, child killed during "
                   f"{phase[:-2]}" if started else
                   f"aborted: set-up (imports, data, warm-up) took over {setup_limit:g}s")
            break
        try:
            kind, payload = parent.recv()
        except EOFError:
            why = f"child process died (exit code {proc.exitcode}; out of memory?)"
            break
        if kind == "started":
            started, limit = time.perf_counter(), args.max_seconds + 5.0
        elif kind == "phase":
            phases.update(payload)
        else:
            entry = payload
    if entry is None:
        if proc.is_alive():
            proc.kill()  # our own child, by its handle
        kernel = "trace" if case["kind"] == "trace" else "full"
        rows = case["n"] * (1 if kernel == "trace" else MODELS[MODEL].classes)
        entry = {"case": case["case"], "n": case["n"], "kernel": kernel,
                 "method": "ntvp-lanczos" if case["kind"] == "top" else "jacobian-eigvalsh",
                 "shape": [rows, rows], "seconds": None,
                 "jacobian_s": phases.get("jacobian_s"),
                 "contraction_s": phases.get("contraction_s"), "eigen_s": None,
                 "top10": None, "trace": None, "error": why}
        log(f"  {case['case']}: {why}")
    proc.join(10)
    return entry


def main(argv):
    args = parse_args(argv)
    torch, nn = import_torch(args.threads)
    _, _, _, n_params, ck = build_model(torch, nn, args)  # checks the checkpoint up front
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads, lenet5 ({n_params} "
        f"params), cases {[c['case'] + ' N=' + str(c['n']) for c in args.case_list]}")
    cases = []
    for case in args.case_list:
        log(f"{case['case']} (N={case['n']})")
        entry = (run_case(args, case, lambda msg: None) if args.in_process
                 else run_case_in_child(args, case))
        if entry.get("seconds") is not None:
            log(f"  {case['case']}: {entry['seconds']:.2f}s, top {entry['top10'][:3]}")
        cases.append(entry)
    print(json.dumps({
        "torch": torch.__version__,
        "torch_source": torch_source(torch),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "mkl_num_threads": os.environ.get("MKL_NUM_THREADS"),
        "model": MODEL,
        "params": n_params,
        "mode": "eval",
        "normalize": "half",
        "seed": args.seed,
        "checkpoint": ck,
        "jacobian_dtype": "float32",
        "kernel_dtype": args.kernel_dtype,
        "eigen_dtype": "float64",
        "max_seconds": args.max_seconds,
        "cases": cases,
    }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
