export { envVariables, optionsFromEnv } from "./env.js";
export {
  currentEmulation,
  type Emulation,
  type EmulationOptions,
  emulationSummary,
  install,
  uninstall,
} from "./install.js";
export { type Profile, type ProfileName, profileNames, profiles } from "./profiles.js";
