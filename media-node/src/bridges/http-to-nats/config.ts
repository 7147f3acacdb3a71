// Settings of the HTTP -> NATS bridge: declared in ../../settings/bridges.ts and ../../settings/nats.ts.
export { ConfigError, type HttpToNatsConfig, httpToNatsProcessSettings as httpToNatsSettings, readHttpToNatsConfig } from "../../settings/processes.ts";
