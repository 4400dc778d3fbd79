#!/usr/bin/env node
// Validate KEDA resources (ScaledObject, TriggerAuthentication) against KEDA's CRD schemas,
// as compiled by the npm package `@kubernetes-models/keda` (MIT; generated from the CRDs of
// KEDA's 2.10.1 release), installed by `npm ci`; nothing is downloaded here.
//
//   node tests/tools/keda.mjs < documents.json
//
// Reads a JSON array of resources on stdin. Prints one line per invalid resource,
// `KIND/NAME: errors`, and exits 1 when there is any, 2 on a usage or setup error
// (a kind it has no schema for included), 0 when every resource is valid.
import { readFileSync } from "node:fs";

let models;
try {
  models = await import("@kubernetes-models/keda/keda.sh/v1alpha1");
} catch (error) {
  const reason = error.code ?? error.message;
  console.error(`@kubernetes-models/keda is not installed (${reason}): run \`npm ci\` (needs node 20+)`);
  process.exit(2);
}

let resources;
try {
  resources = JSON.parse(readFileSync(0, "utf8"));
} catch (error) {
  console.error(`stdin is not a JSON array of resources: ${error.message}`);
  process.exit(2);
}

let invalid = 0;
for (const resource of resources) {
  const Model = resource.apiVersion === "keda.sh/v1alpha1" ? models[resource.kind] : undefined;
  if (Model === undefined) {
    console.error(`no KEDA schema for ${resource.apiVersion} ${resource.kind}`);
    process.exit(2);
  }
  try {
    new Model(resource).validate();
  } catch (error) {
    invalid += 1;
    console.log(`${resource.kind}/${resource.metadata?.name ?? "?"}: ${error.message}`);
  }
}
process.exit(invalid > 0 ? 1 : 0);
