// Rooms used to keep chat/presence events in a table of their own (`media_side_pending`) before handing them
// to a separate outbox object. A room that still has such rows moves them into its outbox, in their order,
// the first time it starts with this code, then drops the old table: nothing waiting is lost by the upgrade.

export function adoptLegacyPending(sql: SqlStorage): void {
  const exists = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'media_side_pending'").one().n > 0;
  if (!exists) return;
  sql.exec(
    `INSERT INTO outbox (id, type, body, enqueued_at)
     SELECT json_extract(body, '$.id'), json_extract(body, '$.type'), body, ?
     FROM media_side_pending WHERE json_valid(body) AND json_extract(body, '$.id') IS NOT NULL ORDER BY seq
     ON CONFLICT (id) DO NOTHING`,
    Date.now(),
  );
  sql.exec("DROP TABLE media_side_pending");
}
