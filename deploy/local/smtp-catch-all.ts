// Local catch-all SMTP server for `npm start`: accepts every message on 127.0.0.1 (no TLS, no auth), logs who it
// was for and its subject, and keeps each one as an .eml file under var/mail, so a developer can read what the
// notifier would have sent. Never for anything but a local run.
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

const port = Number(process.env.SMTP_PORT ?? 2525);
const dir = resolve(import.meta.dirname, "../../var/mail");
mkdirSync(dir, { recursive: true });
let n = 0;

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  logger: false,
  onData(stream, _session, callback) {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const raw = Buffer.concat(chunks);
      const file = resolve(dir, `${new Date().toISOString().replace(/[:.]/g, "-")}-${++n}.eml`);
      writeFileSync(file, raw);
      simpleParser(raw)
        .then((mail) => console.log(`[smtp] to ${mail.to && "text" in mail.to ? mail.to.text : "?"}: "${mail.subject ?? ""}" -> ${file}`))
        .catch(() => console.log(`[smtp] unparsable message -> ${file}`))
        .finally(() => callback());
    });
  },
});
server.listen(port, "127.0.0.1", () => console.log(`[smtp] catch-all listening on 127.0.0.1:${port}, mail kept in ${dir}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
process.on("SIGINT", () => server.close(() => process.exit(0)));
