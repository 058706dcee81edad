#!/usr/bin/env node
// The installed `goldpan` command. npm links bins at install time, before `npm run build` has
// produced dist/, so this committed stub is what node_modules/.bin/goldpan points at.
try {
  await import("../dist/bin.js");
} catch (e) {
  if (e?.code === "ERR_MODULE_NOT_FOUND" && String(e.message).includes("dist/bin.js")) {
    process.stderr.write("goldpan: the CLI is not built yet; run `npm run build` at the repository root.\n");
    process.exit(1);
  }
  throw e;
}
