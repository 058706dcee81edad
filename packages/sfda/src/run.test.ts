/** trainSource / adapt wiring against a fake runTask: validation first, paths resolved, no defaults added. */
import { resolve } from "node:path";
import { beforeEach, describe, expect, it, vi } from "vitest";

const calls = vi.hoisted(() => ({ source: [] as unknown[], adapt: [] as unknown[] }));

vi.mock("@goldpan/sdk", async (importOriginal) => {
  const sdk = await importOriginal<typeof import("@goldpan/sdk")>();
  const binding = {
    sfdaSource: async (config: unknown) => (calls.source.push(config), { weightsHash: "s", progressEvents: 0 }),
    sfdaAdapt: async (config: unknown) => (calls.adapt.push(config), { weightsHash: "a", progressEvents: 0 }),
  };
  return {
    ...sdk,
    runTask: vi.fn(async (_options: unknown, call: (b: unknown, onProgress: unknown, token: unknown) => Promise<unknown>) => call(binding, () => {}, {})),
  };
});

const { adapt, trainSource } = await import("./run.js");
const sdk = await import("@goldpan/sdk");

beforeEach(() => {
  vi.clearAllMocks();
  calls.source.length = 0;
  calls.adapt.length = 0;
  delete process.env.GOLDPAN_DATA;
});

describe("trainSource and adapt", () => {
  it("hand the core only what was given, dataDir resolved and paths absolute", async () => {
    process.env.GOLDPAN_DATA = "/env/data";
    await expect(trainSource({ source: "usps", epochs: 2, outDir: "runs/s" })).resolves.toEqual({ weightsHash: "s", progressEvents: 0 });
    expect(calls.source).toEqual([{ source: "usps", epochs: 2, outDir: resolve("runs/s"), dataDir: "/env/data" }]);
    await adapt({ method: "pul", from: "runs/s/source.safetensors", target: "mnist", dataDir: "d", pul: { classes: 4 } });
    expect(calls.adapt).toEqual([{ method: "pul", from: resolve("runs/s/source.safetensors"), target: "mnist", dataDir: resolve("d"), pul: { classes: 4 } }]);
  });

  it("validate before the core sees anything", async () => {
    await expect(adapt({ method: "foo", target: "cifar" } as never)).rejects.toMatchObject({ code: "E_CONFIG" });
    await expect(trainSource({} as never)).rejects.toMatchObject({ code: "E_CONFIG", issues: [{ path: ["source"] }] });
    expect(sdk.runTask).not.toHaveBeenCalled();
  });
});
