// Settings of the NATS -> HTTP bridge: declared in ../../settings/bridges.ts and ../../settings/nats.ts.
export { ConfigError, type NatsToHttpConfig, natsToHttpProcessSettings as natsToHttpSettings, readNatsToHttpConfig } from "../../settings/processes.ts";
