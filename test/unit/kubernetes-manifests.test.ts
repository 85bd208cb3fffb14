// deploy/kubernetes: every manifest parses and validates against the Kubernetes and KEDA schemas,
// the kustomization names every file, the agent settings it passes exist, and the ScaledJob's
// metrics-api trigger finds the group's desired count where GET /autoscale answers it.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { ScaledJob, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { Namespace, Secret } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { helpText } from "../../gpu-node/config.ts";
import { autoscaleAnswer } from "../../src/fleet/autoscale-answer.ts";
import { decideScaling } from "../../src/fleet/scaling.ts";

const DIR = path.resolve(import.meta.dirname, "../../deploy/kubernetes");

interface Validatable {
  validate(): void;
}
const MODELS: Record<string, new (data: never) => Validatable> = {
  "v1/Namespace": Namespace,
  "v1/Secret": Secret,
  "keda.sh/v1alpha1/ScaledJob": ScaledJob,
  "keda.sh/v1alpha1/TriggerAuthentication": TriggerAuthentication,
};

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; spec?: Record<string, unknown> };

function validate(doc: Manifest): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
  new Model(doc as never).validate();
}

const kustomization = parseYaml(readFileSync(path.join(DIR, "kustomization.yaml"), "utf8")) as {
  resources: string[];
  configMapGenerator: Array<{ name: string; envs: string[] }>;
};
const manifests: Manifest[] = kustomization.resources.flatMap((file) =>
  parseAllDocuments(readFileSync(path.join(DIR, file), "utf8")).map((doc) => {
    expect(doc.errors, file).toEqual([]);
    return doc.toJS() as Manifest;
  }),
);
const scaledJob = manifests.find((m) => m.kind === "ScaledJob") as Manifest & {
  spec: {
    minReplicaCount: number;
    triggers: Array<{ type: string; metadata: Record<string, string>; authenticationRef: { name: string } }>;
    jobTargetRef: { template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }>; terminationGracePeriodSeconds: number } } };
  };
};

/** gjson's path syntax as KEDA's metrics-api scaler reads valueLocation: keys split on dots, `\.` a literal dot. */
function gjson(value: unknown, location: string): unknown {
  const keys = location.split(/(?<!\\)\./).map((k) => k.replaceAll("\\.", "."));
  return keys.reduce<unknown>((at, key) => (at !== null && typeof at === "object" ? (at as Record<string, unknown>)[key] : undefined), value);
}

describe("deploy/kubernetes", () => {
  it("lists every manifest in the kustomization, and each validates against its schema", () => {
    const yamlFiles = readdirSync(DIR).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    expect([...kustomization.resources].sort()).toEqual(yamlFiles.sort());
    expect(manifests.map((m) => m.kind).sort()).toEqual(["Namespace", "ScaledJob", "Secret", "Secret", "TriggerAuthentication"]);
    for (const doc of manifests) validate(doc);
  });

  it("refuses a manifest that breaks its schema (the validation is real)", () => {
    const broken = structuredClone(scaledJob) as unknown as { spec: { jobTargetRef: { template: { spec: Record<string, unknown> } } } };
    delete broken.spec.jobTargetRef.template.spec.containers;
    expect(() => validate(broken as never)).toThrow(/containers/);
    expect(() => validate({ ...scaledJob, spec: { ...scaledJob.spec, minReplicaCount: "none" } } as never)).toThrow();
  });

  it("scales from zero and lets a running task finish before a pod goes", () => {
    expect(scaledJob.spec.minReplicaCount).toBe(0);
    // A pool's default timeout (600 s) fits in the grace period.
    expect(scaledJob.spec.jobTargetRef.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(600);
  });

  it("passes the agent only settings it knows", () => {
    const known = new Set(helpText().match(/SDGATE_[A-Z0-9_]+/g));
    const env = scaledJob.spec.jobTargetRef.template.spec.containers[0]!.env.map((e) => e.name);
    const generated = kustomization.configMapGenerator.flatMap((g) =>
      g.envs.flatMap((file) =>
        readFileSync(path.join(DIR, file), "utf8")
          .split("\n")
          .filter((line) => line.includes("="))
          .map((line) => line.slice(0, line.indexOf("="))),
      ),
    );
    expect(generated).toContain("SDGATE_GATEWAY");
    for (const name of [...env, ...generated]) expect(known, name).toContain(name);
  });

  it("reads the desired count of its own group where GET /autoscale answers it", () => {
    const [trigger] = scaledJob.spec.triggers;
    expect(trigger).toMatchObject({ type: "metrics-api", metadata: { authMode: "bearer", targetValue: "1" } });
    expect(trigger!.metadata.url).toMatch(/^https:\/\/[^/]+\/autoscale$/);
    expect(manifests.find((m) => m.kind === "TriggerAuthentication")!.metadata.name).toBe(trigger!.authenticationRef.name);
    const group = scaledJob.spec.jobTargetRef.template.spec.containers[0]!.env.find((e) => e.name === "SDGATE_NODE_GROUP")!.value!;

    // The answer as the route builds it, for that group with three tasks waiting and no node.
    const scalingGroup = {
      name: group,
      gpuClass: "NVIDIA L4",
      gpuMemoryMb: 24_576,
      minNodes: 0,
      maxNodes: 0,
      idleMs: 120_000,
      targetWaitMs: 60_000,
      bootMs: 90_000,
      configured: true,
    };
    const queue = {
      checkpoint: "a",
      waiting: 3,
      running: 0,
      oldestWaitingAgeMs: 0,
      arrivalsPerS: 0,
      inferenceMs: 3_000,
      loadMs: 8_000,
      concurrencyCap: 10,
      maxNodes: 0,
      minGpuMemoryMb: 0,
      gpuClass: null,
    };
    const other = { ...scalingGroup, name: "other-group", gpuMemoryMb: 80_000 };
    const answer = JSON.parse(JSON.stringify(autoscaleAnswer({ groups: decideScaling([scalingGroup, other], [], [queue], 0), unservedCheckpoints: [] })));
    const value = gjson(answer, trigger!.metadata.valueLocation!);
    expect(value).toBe(answer.groups[group].desired);
    expect(value).toBeGreaterThanOrEqual(1);
  });
});
