export {
  type EchoDatagramEvent,
  EchoServer,
  type EchoServerOptions,
  echoChannelNames,
} from "./echo.js";
export { LiveListener, type LiveListenerOptions } from "./live.js";
export { SilentUdpPort } from "./silent-udp.js";
export { Tarpit, type TarpitOptions } from "./tarpit.js";
