/** The CLI's paths that need no addon: help, usage errors, config validation. */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { main } from "./main.js";
import { defaultRunDir } from "./commands/train.js";

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const code = await main(argv, { stdout, stderr });
  return { code, stdout: String(stdout.read() ?? ""), stderr: String(stderr.read() ?? "") };
}

describe("main", () => {
  it("prints help with exit 0", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage:");
  });

  it("exits 2 on a bad flag, naming it", async () => {
    const r = await run(["train", "--bogus"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^goldpan: unknown option --bogus/);
  });

  it("exits 2 listing every invalid value by flag, before touching the core", async () => {
    const r = await run(["train", "--epochs", "0", "--lr", "abc", "--device", "tpu", "--out", "/nonexistent/never-created"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("  --epochs: must be ≥ 1\n");
    expect(r.stderr).toContain("  --lr: must be a number\n");
    expect(r.stderr).toContain("  --device: must be one of cpu, cuda\n");
  });

  it("with --json prints one error object on stdout", async () => {
    const r = await run(["eval", "c.safetensors", "--split", "val", "--json"]);
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout) as { error: { code: string; issues: { path: string[] }[] } };
    expect(out.error.code).toBe("E_CONFIG");
    expect(out.error.issues[0]?.path).toEqual(["split"]);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
  });
});

describe("main: hessian", () => {
  it("exits 2 listing every invalid value by flag, before touching the core", async () => {
    const r = await run(["hessian", "c.safetensors", "--samples", "0", "--precision", "f16", "--top-k", "5", "--max-iter", "3", "--trace-samples", "5", "--json"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("  --samples: must be ≥ 1\n");
    expect(r.stderr).toContain("  --precision: must be one of f32, f64\n");
    expect(r.stderr).toContain("  --max-iter: must be ≥ the number of eigenpairs asked for (one Lanczos step each at least)\n");
    expect(r.stderr).toContain("  --trace-samples: must be ≥ 10 (the trace's minimum sample count)\n");
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: "E_CONFIG" } });
  });

  it("names diagnostics flags in train errors", async () => {
    const r = await run(["train", "--diagnostics", "eq4", "--every", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("  --diagnostics: must be one of eq3, ntk, swing, speed\n");
    expect(r.stderr).toContain("  --every: must be ≥ 1\n");
  });
});

describe("main: ntk", () => {
  it("exits 2 listing every invalid value by flag, before touching the core", async () => {
    const r = await run(["ntk", "c.safetensors", "--kernel", "diag", "--method", "ntvp", "--memory-budget", "lots", "--n", "0", "--layers", ",", "--json"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("  --kernel: must be one of full, blocks, trace\n");
    expect(r.stderr).toContain("  --memory-budget: must be a size in bytes: a whole number ≥ 1, or text such as 4GiB, 500MB, 1kB\n");
    expect(r.stderr).toContain("  --n: must be ≥ 1\n");
    expect(r.stderr).toContain("  --top-k: the matrix-free method (ntvp) computes top eigenvalues only: give topK ≥ 1\n");
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: "E_CONFIG" } });
  });
});

describe("main: sfda", () => {
  it("exits 2 listing every invalid value by its flag, nested ones included", async () => {
    const r = await run(["sfda", "adapt", "--method", "foo", "--target", "cifar", "--pul-attach", "head", "--shot-cls-par", "-1", "--pul-freeze-classifier", "yes", "--epochs", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("  --method: \"foo\" is not one of none, adabn, kl-only, pul, shot-im, shot\n");
    expect(r.stderr).toContain("  --from: must be a path\n");
    expect(r.stderr).toContain("  --target: \"cifar\" is not one of mnist, usps, svhn\n");
    expect(r.stderr).toContain("  --epochs: must be ≥ 1\n");
    expect(r.stderr).toContain("  --pul-attach: \"head\" is not one of backbone, bottleneck\n");
    expect(r.stderr).toContain("  --pul-freeze-classifier: must be true or false\n");
    expect(r.stderr).toContain("  --shot-cls-par: must be ≥ 0\n");
    expect(r.stderr).toContain("(E_CONFIG, exit code 2)");
  });

  it("validates table options the same way, with --json", async () => {
    const r = await run(["sfda", "table", "--seeds", "0", "--pairs", "m2u,x2y", "--methods", "", "--json"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("  --seeds: must be ≥ 1\n");
    expect(r.stderr).toContain('  --pairs: "x2y" is not one of m2u, u2m, s2m\n');
    expect(r.stderr).toContain("  --methods: must name at least one of none, adabn, kl-only, pul, shot-im, shot\n");
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: "E_CONFIG" } });
  });

  it("asks for a source", async () => {
    const r = await run(["sfda", "source", "--epochs", "1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("  --source: required: one of mnist, usps, svhn\n");
  });
});

describe("defaultRunDir", () => {
  it("is runs/<UTC timestamp>, made unique", () => {
    const now = new Date("2025-01-02T03:04:05.678Z");
    expect(defaultRunDir(now, () => false)).toBe("runs/20250102-030405");
    const taken = new Set(["runs/20250102-030405", "runs/20250102-030405-2"]);
    expect(defaultRunDir(now, (p) => taken.has(p))).toBe("runs/20250102-030405-3");
  });
});
