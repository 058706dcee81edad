import { describe, expect, it } from "vitest";
import { GoldpanError } from "@goldpan/sdk";
import { COMMANDS, parseArgs } from "./args.js";

function usage(argv: string[]): GoldpanError {
  try {
    parseArgs(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(GoldpanError);
    expect((e as GoldpanError).code).toBe("E_CONFIG");
    return e as GoldpanError;
  }
  throw new Error(`expected a usage error for ${argv.join(" ")}`);
}

describe("parseArgs", () => {
  it("help and version", () => {
    expect(parseArgs([])).toEqual({ name: "help" });
    expect(parseArgs(["--help"])).toEqual({ name: "help" });
    expect(parseArgs(["-h"])).toEqual({ name: "help" });
    expect(parseArgs(["help", "eval"])).toEqual({ name: "help", topic: "eval" });
    expect(parseArgs(["train", "--epochs", "0", "--help"])).toEqual({ name: "help", topic: "train" });
    expect(parseArgs(["info", "-h"])).toEqual({ name: "help", topic: "info" });
    expect(parseArgs(["--version"])).toEqual({ name: "version" });
  });

  it("train: every flag maps to its config field, numbers as numbers", () => {
    const cmd = parseArgs([
      "train",
      "--model", "lenet5",
      "--dataset", "fashion-mnist",
      "--data", "/data",
      "--epochs", "2",
      "--batch-size", "64",
      "--lr", "1e-3",
      "--momentum=0.5",
      "--weight-decay", "0",
      "--nesterov",
      "--seed", "42",
      "--device", "cpu",
      "--out", "runs/x",
      "--checkpoint-every", "100",
      "--progress-every", "10",
      "--train-limit", "512",
      "--test-limit", "200",
      "--json",
    ]);
    expect(cmd).toEqual({
      name: "train",
      json: true,
      config: {
        model: "lenet5",
        dataset: "fashion-mnist",
        dataDir: "/data",
        epochs: 2,
        batchSize: 64,
        lr: 0.001,
        momentum: 0.5,
        weightDecay: 0,
        nesterov: true,
        seed: 42,
        device: "cpu",
        outDir: "runs/x",
        checkpointEvery: 100,
        progressEvery: 10,
        trainLimit: 512,
        testLimit: 200,
      },
    });
  });

  it("accepts negative numbers as values, for validation to judge", () => {
    expect(parseArgs(["train", "--seed", "-1", "--lr", "-.5", "--momentum=-2"])).toMatchObject({ config: { seed: -1, lr: -0.5, momentum: -2 } });
    expect(usage(["train", "--seed", "-x"]).message).toMatch(/^option --seed needs a value; write --seed=<value>/);
  });

  it("leaves defaults to the schema and bad numbers to validation", () => {
    expect(parseArgs(["train"])).toEqual({ name: "train", config: {}, json: false });
    expect(parseArgs(["train", "--epochs", "two", "--lr", ""])).toMatchObject({ config: { epochs: "two", lr: "" } });
  });

  it("train --resume takes only the resume overrides", () => {
    expect(parseArgs(["train", "--resume", "r/epoch-1.safetensors", "--epochs", "4", "--data", "d", "--out", "o", "--device", "cpu"])).toEqual({
      name: "resume",
      json: false,
      config: { checkpoint: "r/epoch-1.safetensors", epochs: 4, dataDir: "d", outDir: "o", device: "cpu" },
    });
    expect(usage(["train", "--resume", "c", "--lr", "0.1", "--seed", "1"]).message).toMatch(/--lr, --seed cannot be combined with --resume/);
  });

  it("train --diagnostics: a list, with --every and the probe's size and step", () => {
    expect(parseArgs(["train", "--diagnostics", "eq3", "--every", "2", "--diagnostics-samples", "64", "--diagnostics-alpha", "0.05"])).toEqual({
      name: "train",
      json: false,
      config: { diagnostics: ["eq3"], diagnosticsEvery: 2, diagnosticsSamples: 64, diagnosticsAlpha: 0.05 },
    });
    expect(usage(["train", "--resume", "c", "--diagnostics", "eq3"]).message).toMatch(/--diagnostics cannot be combined with --resume/);
  });

  it("train --track: the same list as --diagnostics, both merged when both are given", () => {
    expect(parseArgs(["train", "--track", "ntk,swing,speed", "--every", "50"])).toEqual({
      name: "train",
      json: false,
      config: { diagnostics: ["ntk", "swing", "speed"], diagnosticsEvery: 50 },
    });
    expect(parseArgs(["train", "--diagnostics", "eq3,ntk", "--track", "ntk,speed"])).toMatchObject({ config: { diagnostics: ["eq3", "ntk", "speed"] } });
    expect(usage(["train", "--resume", "c", "--track", "ntk"]).message).toMatch(/^--track cannot be combined with --resume/);
  });

  it("ntk: the checkpoint as an argument, the kernel's options as flags, --no-eigen turning eigen off", () => {
    expect(
      parseArgs([
        "ntk", "r/last.safetensors",
        "--data", "d",
        "--split", "test",
        "--n", "20",
        "--kernel", "full",
        "--method", "jacobian",
        "--top-k", "10",
        "--no-eigen",
        "--layers", "conv1,fc3",
        "--memory-budget", "4GiB",
        "--batch-size", "64",
        "--precision", "f64",
        "--seed", "3",
        "--out", "o",
        "--json",
      ]),
    ).toEqual({
      name: "ntk",
      json: true,
      config: {
        checkpoint: "r/last.safetensors",
        dataDir: "d",
        split: "test",
        n: 20,
        kernel: "full",
        method: "jacobian",
        topK: 10,
        eigen: false,
        layers: ["conv1", "fc3"],
        memoryBudget: "4GiB",
        batchSize: 64,
        precision: "f64",
        seed: 3,
        outDir: "o",
      },
    });
    expect(parseArgs(["ntk", "c"])).toEqual({ name: "ntk", json: false, config: { checkpoint: "c" } });
    expect(parseArgs(["ntk", "c", "--memory-budget", "1000"])).toMatchObject({ config: { memoryBudget: "1000" } });
    expect(parseArgs(["ntk", "--help"])).toEqual({ name: "help", topic: "ntk" });
    expect(usage(["ntk"]).message).toMatch(/missing <checkpoint>\nRun `goldpan ntk --help`/);
    expect(usage(["ntk", "c", "--eigen"]).message).toMatch(/^unknown option --eigen/);
  });

  it("hessian: the checkpoint as an argument, the analyses as flags, --out apart from the config", () => {
    expect(
      parseArgs([
        "hessian", "r/last.safetensors",
        "--data", "d",
        "--top-k", "2",
        "--trace",
        "--density",
        "--samples", "64",
        "--batch-size", "32",
        "--labels", "random",
        "--mode", "train",
        "--precision", "f64",
        "--split", "test",
        "--seed", "3",
        "--max-iter", "20",
        "--tol", "1e-4",
        "--trace-samples", "30",
        "--trace-tol", "0",
        "--density-steps", "40",
        "--density-runs", "2",
        "--out", "o",
        "--json",
      ]),
    ).toEqual({
      name: "hessian",
      json: true,
      out: "o",
      config: {
        checkpoint: "r/last.safetensors",
        dataDir: "d",
        topK: 2,
        trace: true,
        density: true,
        samples: 64,
        batchSize: 32,
        labels: "random",
        mode: "train",
        precision: "f64",
        split: "test",
        seed: 3,
        maxIter: 20,
        tol: 0.0001,
        traceSamples: 30,
        traceTol: 0,
        densitySteps: 40,
        densityRuns: 2,
      },
    });
    expect(parseArgs(["hessian", "c.safetensors"])).toEqual({ name: "hessian", json: false, config: { checkpoint: "c.safetensors" } });
    expect(parseArgs(["hessian", "c", "--samples", "many"])).toMatchObject({ config: { samples: "many" } });
    expect(parseArgs(["hessian", "--help"])).toEqual({ name: "help", topic: "hessian" });
    expect(usage(["hessian"]).message).toMatch(/missing <checkpoint>\nRun `goldpan hessian --help`/);
    expect(usage(["hessian", "c", "--trace=yes"]).message).toMatch(/^option --trace takes no value/);
    expect(usage(["hessian", "c", "--k", "2"]).message).toMatch(/^unknown option --k/);
  });

  it("eval and info take the checkpoint as an argument", () => {
    expect(parseArgs(["eval", "c.safetensors", "--split", "train", "--limit", "100", "--json"])).toEqual({
      name: "eval",
      json: true,
      config: { checkpoint: "c.safetensors", split: "train", limit: 100 },
    });
    expect(parseArgs(["info", "c.safetensors"])).toEqual({ name: "info", checkpoint: "c.safetensors", json: false });
    expect(parseArgs(["models", "--json"])).toEqual({ name: "models", json: true });
    expect(usage(["eval"]).message).toMatch(/missing <checkpoint>/);
    expect(usage(["info", "a", "b"]).message).toMatch(/unexpected argument "b"/);
  });

  it("usage errors say what is wrong and where to look", () => {
    expect(usage(["frobnicate"]).message).toMatch(/^unknown command "frobnicate"; commands: train, eval, hessian, ntk, models, info, sfda\nRun `goldpan --help`/);
    expect(usage(["train", "--bogus"]).message).toMatch(/^unknown option --bogus\nRun `goldpan train --help`/);
    expect(usage(["train", "--epochs"]).message).toMatch(/^option --epochs needs a value/);
    expect(usage(["train", "--json=yes"]).message).toMatch(/^option --json takes no value/);
    expect(usage(["train", "extra"]).message).toMatch(/unexpected argument "extra"/);
    expect(usage(["help", "nope"]).message).toMatch(/unknown command "nope"/);
  });

  it("sfda source and adapt: flags to config fields, nested PUL/SHOT options, true|false booleans", () => {
    expect(parseArgs(["sfda", "source", "--source", "mnist", "--epochs", "3", "--train-limit", "5000", "--nesterov", "false", "--out", "runs/demo", "--json"])).toEqual({
      name: "sfda-source",
      json: true,
      config: { source: "mnist", epochs: 3, trainLimit: 5000, nesterov: false, outDir: "runs/demo" },
    });
    expect(
      parseArgs([
        "sfda", "adapt",
        "--method", "pul",
        "--from", "runs/demo/source.safetensors",
        "--target", "usps",
        "--epochs", "1",
        "--lr", "0.005",
        "--seed", "2",
        "--pul-attach", "backbone",
        "--pul-lambda", "0.5",
        "--pul-labels", "redraw",
        "--pul-freeze-classifier", "false",
        "--pul-classes", "4",
        "--pul-temperature", "2",
        "--shot-cls-par", "0.3",
        "--train-limit", "300",
        "--test-limit", "200",
        "--data", "d",
        "--out", "o",
      ]),
    ).toEqual({
      name: "sfda-adapt",
      json: false,
      config: {
        method: "pul",
        from: "runs/demo/source.safetensors",
        target: "usps",
        epochs: 1,
        lr: 0.005,
        seed: 2,
        pul: { attach: "backbone", lambda: 0.5, labels: "redraw", freezeClassifier: false, classes: 4, temperature: 2 },
        shot: { clsPar: 0.3 },
        trainLimit: 300,
        testLimit: 200,
        dataDir: "d",
        outDir: "o",
      },
    });
    // A boolean that is neither true nor false is left for validation to name.
    expect(parseArgs(["sfda", "adapt", "--pul-freeze-classifier", "yes"])).toMatchObject({ config: { pul: { freezeClassifier: "yes" } } });
  });

  it("sfda table: comma lists", () => {
    expect(parseArgs(["sfda", "table", "--seeds", "1", "--pairs", "m2u", "--methods", "none, pul,", "--source-epochs", "1", "--adapt-epochs", "1", "--shot-epochs", "2", "--train-limit", "300", "--test-limit", "200", "--out", "t"])).toEqual({
      name: "sfda-table",
      json: false,
      options: { seeds: 1, pairs: ["m2u"], methods: ["none", "pul"], sourceEpochs: 1, adaptEpochs: 1, shotEpochs: 2, trainLimit: 300, testLimit: 200, out: "t" },
    });
  });

  it("sfda help and usage errors", () => {
    expect(parseArgs(["sfda"])).toEqual({ name: "help", topic: "sfda" });
    expect(parseArgs(["sfda", "--help"])).toEqual({ name: "help", topic: "sfda" });
    expect(parseArgs(["sfda", "adapt", "--method", "pul", "-h"])).toEqual({ name: "help", topic: "sfda adapt" });
    expect(parseArgs(["help", "sfda", "table"])).toEqual({ name: "help", topic: "sfda table" });
    expect(usage(["sfda", "train"]).message).toMatch(/^unknown sfda command "train"; sfda commands: source, adapt, table\nRun `goldpan sfda --help`/);
    expect(usage(["sfda", "--epochs", "1"]).message).toMatch(/^unknown option --epochs; sfda commands/);
    expect(usage(["sfda", "source", "--resume", "x"]).message).toMatch(/^unknown option --resume\nRun `goldpan sfda source --help`/);
    expect(usage(["sfda", "adapt", "extra"]).message).toMatch(/unexpected argument "extra"/);
    expect(usage(["help", "sfda", "nope"]).message).toMatch(/unknown sfda command "nope"/);
  });

  it("every train flag but the CLI's own sets a TrainConfig field", () => {
    const names = COMMANDS.train.flags.map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(["model", "dataset", "data", "epochs", "batch-size", "lr", "momentum", "weight-decay", "nesterov", "seed", "device", "out", "checkpoint-every", "train-limit", "test-limit", "resume", "json"]));
  });
});
