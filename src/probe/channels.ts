import diagnostics from "node:diagnostics_channel";
import type { TimelineEntry } from "./report.js";

/**
 * The probe never logs: each piece of evidence, and what it is waiting for,
 * is published here. The CLI draws its progress display from these.
 */
export const probeChannelNames = {
  step: "synlimit:probe:step",
  progress: "synlimit:probe:progress",
} as const;

/** A timeline entry was recorded. `probe` tells concurrent probes apart. */
export interface ProbeStepEvent {
  readonly probe: number;
  readonly entry: TimelineEntry;
}

/** What the probe is doing now (transient; not part of the result). */
export interface ProbeProgressEvent {
  readonly probe: number;
  readonly atMs: number;
  readonly text: string;
}

export const probeChannels = {
  step: diagnostics.channel(probeChannelNames.step),
  progress: diagnostics.channel(probeChannelNames.progress),
};
