export { LiveListener, type LiveListenerOptions } from "./live.js";
export { Tarpit, type TarpitOptions } from "./tarpit.js";
