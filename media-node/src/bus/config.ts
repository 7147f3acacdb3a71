// Bus settings (NATS connection, streams, the media node's outbox): declared in ../settings/nats.ts.
export { type BusConfig, busConfig, busProcessSettings as busSettings, readBusConfig } from "../settings/processes.ts";
