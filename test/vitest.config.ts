import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["*.test.ts"],
    // The native addon runs training on libuv's threads; keep it in child processes, one file at a
    // time, so that timings (the event-loop check) are not skewed by a parallel file.
    pool: "forks",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
