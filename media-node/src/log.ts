// Structured logs: one JSON object per line on stdout ({time, level, msg, ...fields}), so a log shipper can
// index stream ids and reasons without parsing prose. Child loggers carry fields (component, streamId) along.

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** Where lines go; tests pass their own to assert on what was logged. */
export type LogSink = (line: string, record: LogFields & { level: LogLevel; msg: string }) => void;

const stdoutSink: LogSink = (line) => process.stdout.write(line + "\n");

function serialize(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, ...("code" in value ? { code: value.code } : {}) };
  return value;
}

export function createLogger(opts: { level?: LogLevel; sink?: LogSink; fields?: LogFields } = {}): Logger {
  const min = ORDER[opts.level ?? "info"];
  const sink = opts.sink ?? stdoutSink;
  const base = opts.fields ?? {};
  const write = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    const record: LogFields & { level: LogLevel; msg: string } = { time: new Date().toISOString(), level, msg, ...base };
    for (const [k, v] of Object.entries(fields ?? {})) record[k] = serialize(v);
    sink(JSON.stringify(record), record);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger({ level: opts.level ?? "info", sink, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (unit tests that do not care). */
export const silentLogger: Logger = createLogger({ sink: () => {} });
