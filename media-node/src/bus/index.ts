// The event bus for media-node code: import from here.
export { type BusConfig, busConfig, readBusConfig } from "./config.ts";
export { createMediaEventBus, type EventSink, type MediaEventBus } from "./event-bus.ts";
export { OutboxFullError } from "./outbox/outbox.ts";
export { subjectFor } from "./subjects.ts";
