/** Shared by the e2e tests: paths, temp dirs, a tiny IDX writer, and a CLI runner. */
import { GoldpanError } from "@goldpan/sdk";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect } from "vitest";

export const REPO: string = fileURLToPath(new URL("..", import.meta.url));
export const CLI_BIN: string = join(REPO, "packages/cli/dist/bin.js");

/** Small limits: the suite has to stay quick on two cores. */
export const TINY = { trainLimit: 512, testLimit: 200, epochs: 1, batchSize: 64 } as const;

/** `goldpan train` flags of a TINY run. */
export const TINY_FLAGS: readonly string[] = [
  "--train-limit", String(TINY.trainLimit),
  "--test-limit", String(TINY.testLimit),
  "--epochs", String(TINY.epochs),
  "--batch-size", String(TINY.batchSize),
];

/** The GoldpanError `p` rejects with (fails the test if it resolves or rejects otherwise). */
export async function rejection(p: Promise<unknown>): Promise<GoldpanError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, "expected a rejection").toBeInstanceOf(GoldpanError);
  return e as GoldpanError;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp directory, removed after the file's tests. */
export function tempDir(label: string): string {
  const d = mkdtempSync(join(tmpdir(), `goldpan-e2e-${label}-`));
  dirs.push(d);
  return d;
}

/** An IDX file: magic, dims (u32 BE), then `payload` (which may be shorter than the dims say). */
export function idx(magic: number, dims: readonly number[], payload: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, payload]);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  child: ChildProcess;
  done: Promise<CliResult>;
}

/** Starts `node packages/cli/dist/bin.js …args` in `cwd`. */
export function startCli(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliRun {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    cwd: options.cwd ?? REPO,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function runCli(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Starts the CLI, sends SIGINT once stderr shows `pattern`, and returns how it ended. */
export async function interruptCli(args: readonly string[], pattern: RegExp): Promise<CliResult> {
  const run = startCli(args);
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    run.child.stderr!.on("data", (s: string) => {
      stderr += s;
      if (pattern.test(stderr)) resolve();
    });
    run.child.on("close", () => reject(new Error(`exited before ${pattern}:\n${stderr}`)));
  });
  run.child.kill("SIGINT");
  return run.done;
}
