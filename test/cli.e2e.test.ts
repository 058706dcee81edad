/** The built `goldpan` CLI: exit codes, run directory, --json, Ctrl-C. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readCheckpoint } from "@goldpan/sdk";
import { REPO, TINY, runCli, tempDir, interruptCli } from "./helpers.js";

const tinyFlags = ["--train-limit", String(TINY.trainLimit), "--test-limit", String(TINY.testLimit), "--epochs", "1"];

describe("goldpan CLI", () => {
  it("trains with --json: exit 0, one JSON object on stdout, a complete run directory", async () => {
    const out = join(tempDir("cli"), "run");
    const r = await runCli(["train", ...tinyFlags, "--progress-every", "2", "--out", out, "--json"]);
    expect(r.stderr).not.toMatch(/goldpan: /);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as { weightsHash: string; epochs: number; outDir: string; checkpoint: string };
    expect(result).toMatchObject({ epochs: 1, outDir: out });
    expect(result.weightsHash).toMatch(/^[0-9a-f]{64}$/);

    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
    expect(config).toMatchObject({ model: "lenet5", dataset: "mnist", epochs: 1, trainLimit: 512, testLimit: 200, lr: 0.01, outDir: out });
    expect(config.dataDir).toBeTypeOf("string");

    const metrics = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { kind: string; loss: number });
    expect(metrics.length).toBeGreaterThanOrEqual(5);
    expect(metrics.at(-1)!.kind).toBe("epoch");
    expect(existsSync(join(out, "last.safetensors"))).toBe(true);
    expect(existsSync(join(out, "epoch-1.safetensors"))).toBe(true);

    // Progress went to stderr as plain lines (not a TTY).
    expect(r.stderr).toMatch(/^epoch 1\/1 step \d+\/8 loss /m);

    const ev = await runCli(["eval", join(out, "last.safetensors"), "--limit", "100", "--json"]);
    expect(ev.code).toBe(0);
    expect(JSON.parse(ev.stdout)).toMatchObject({ model: "lenet5", split: "test", count: 100 });

    const info = await runCli(["info", join(out, "last.safetensors"), "--json"]);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ model: "lenet5", epoch: 1, config: { trainLimit: 512 } });

    const human = await runCli(["info", join(out, "last.safetensors")]);
    expect(human.stdout).toContain("model: lenet5");
  });

  it("lists models", async () => {
    const r = await runCli(["models", "--json"]);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { name: string }[]).map((m) => m.name)).toContain("lenet5");
    const human = await runCli(["models"]);
    expect(human.stdout).toMatch(/^model +params/);
  });

  it("exits 2 on a bad flag or value", async () => {
    const bad = await runCli(["train", "--bogus"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown option --bogus");
    const invalid = await runCli(["train", "--epochs", "0", "--seed", "-1", "--json"]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain("--epochs: must be ≥ 1");
    expect(invalid.stderr).toContain("--seed: must be ≥ 0");
    expect(JSON.parse(invalid.stdout)).toMatchObject({ error: { code: "E_CONFIG" } });
  });

  it("exits 3 when the data is missing", async () => {
    const out = join(tempDir("cli-nodata"), "run");
    const r = await runCli(["train", ...tinyFlags, "--data", join(out, "no-such-dir"), "--out", out]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("E_DATA_NOT_FOUND");
    // Nothing happened, so no run directory is left behind.
    expect(existsSync(out)).toBe(false);
  });

  it("exits 3 via $GOLDPAN_DATA too", async () => {
    const out = join(tempDir("cli-env"), "run");
    const r = await runCli(["train", ...tinyFlags, "--out", out], { env: { GOLDPAN_DATA: join(out, "nowhere") } });
    expect(r.code).toBe(3);
  });

  it("stops on Ctrl-C with exit 130 and a checkpoint to resume from", async () => {
    const out = join(tempDir("cli-sigint"), "run");
    const r = await interruptCli(["train", "--train-limit", "4096", "--test-limit", "100", "--epochs", "3", "--batch-size", "16", "--progress-every", "1", "--out", out], /^epoch 1\/3 step \d+/m);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain("resume with: goldpan train --resume");
    const info = readCheckpoint(join(out, "last.safetensors"));
    expect(info.epoch).toBeLessThanOrEqual(1);

    // …and resuming that run continues it (here: cut short to one epoch in total).
    const resumed = await runCli(["train", "--resume", join(out, "last.safetensors"), "--epochs", "1", "--json"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ epochs: 1, outDir: out });
  });

  it("works through the npm bin link with --help", async () => {
    const { execFileSync } = await import("node:child_process");
    const text = execFileSync(join(REPO, "node_modules/.bin/goldpan"), ["--help"], { encoding: "utf8" });
    expect(text).toContain("Exit codes:");
  });
});
