// The emulation (src/emulate/install.ts) keeps its installation on this
// global slot; reading it here, rather than importing the module, keeps the
// guard free of the emulator and works across copies of synlimit.
const emulationSlot = Symbol.for("synlimit.emulation");

/** The installed emulation's time scale, or 1 when none is installed. */
export function emulationTimeScale(): number {
  const installed = (globalThis as Record<symbol, unknown>)[emulationSlot] as
    | { timeScale?: unknown }
    | undefined;
  const scale = installed?.timeScale;
  return typeof scale === "number" && Number.isFinite(scale) && scale > 0 ? scale : 1;
}
