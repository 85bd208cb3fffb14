// GET /autoscale's answer from Fleet's scaling view: groups keyed by name, so that KEDA's
// metrics-api scaler finds a group's desired count at `groups.<name>.desired`.
import type { GroupScaling } from "./scaling.ts";

export interface AutoscaleGroupFigures {
  desired: number;
  current: number;
  ready: number;
  busy: number;
  booting: number;
  draining: number;
  demand: number;
  leaving: string[];
  reasons: string[];
}

export interface AutoscaleAnswer {
  groups: Record<string, AutoscaleGroupFigures>;
  unservedCheckpoints: string[];
}

export function autoscaleAnswer(view: { groups: readonly GroupScaling[]; unservedCheckpoints: string[] }): AutoscaleAnswer {
  return {
    groups: Object.fromEntries(view.groups.map(({ group, leave, surplus: _surplus, ...figures }) => [group, { ...figures, leaving: leave }])),
    unservedCheckpoints: view.unservedCheckpoints,
  };
}
