import { defineConfig } from "vitest/config";

// Resolve workspace packages to their TypeScript sources (the `source` export condition), so the
// unit tests run without building the SDK first.
const conditions = ["source", "module", "node", "development|production"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ["src/**/*.test.ts"],
  },
});
