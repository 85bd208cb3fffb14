#!/usr/bin/env node
// `npm run check:cycles`: no import cycles, type-only imports included (a type cycle still ties
// two modules together). Two graphs, each resolved as its own TypeScript project resolves it:
// the Worker (src/, tsconfig.json) and the Node side (gpu-node/ and emulator/, tsconfig.node.json),
// following imports wherever they lead (e.g. into src/protocol). An import madge cannot resolve
// fails the check too: a file it skips is a file whose cycles it cannot see.
import { existsSync } from "node:fs";
import path from "node:path";
import madge from "madge";

const root = path.resolve(import.meta.dirname, "..");
const graphs = [
  { name: "Worker", dirs: ["src"], tsConfig: "tsconfig.json" },
  { name: "Node", dirs: ["gpu-node", "emulator"], tsConfig: "tsconfig.node.json" },
];
// Only relative imports name files of this project; a bare name is a package or a runtime module
// (`node:fs`, `cloudflare:workers`), outside the graph.
const local = /^\.{1,2}\//;

let failed = false;
for (const graph of graphs) {
  const dirs = graph.dirs.filter((dir) => existsSync(path.join(root, dir)));
  const result = await madge(
    dirs.map((dir) => path.join(root, dir)),
    {
      baseDir: root,
      fileExtensions: ["ts", "mts", "js", "mjs"],
      tsConfig: path.join(root, graph.tsConfig),
      detectiveOptions: { ts: { skipTypeImports: false, skipAsyncImports: false }, es6: { skipTypeImports: false, skipAsyncImports: false } },
    },
  );
  const files = Object.keys(result.obj()).length;
  const cycles = result.circular();
  const skipped = result.warnings().skipped.filter((name) => local.test(name));
  for (const cycle of cycles) console.error(`cycle (${graph.name}): ${[...cycle, cycle[0]].join(" → ")}`);
  for (const name of skipped) console.error(`unresolved import (${graph.name}): ${name}`);
  console.log(`${graph.name} (${dirs.join(", ")}; ${graph.tsConfig}): ${files} files, ${cycles.length} cycle(s), ${skipped.length} unresolved`);
  if (cycles.length > 0 || skipped.length > 0) failed = true;
}
process.exit(failed ? 1 : 0);
