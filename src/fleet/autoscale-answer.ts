// GET /autoscale's answer from Fleet's scaling view: groups keyed by name, so that KEDA's
// metrics-api scaler finds a group's desired count at `groups.<name>.desired`.
import type { GroupScaling } from "./scaling.ts";

/** A group's figures as GET /autoscale answers them. */
export type AutoscaleGroupFigures = Omit<GroupScaling, "group" | "leave" | "surplus"> & { leaving: string[] };

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
