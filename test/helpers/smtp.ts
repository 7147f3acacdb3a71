// A real SMTP server for tests and local runs (smtp-server, nodemailer's own), on 127.0.0.1 and a free port,
// that parses every message it accepts (mailparser) and can refuse the next N with a temporary 4xx.
import type { AddressInfo } from "node:net";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

export interface SmtpReceiver {
  host: string;
  port: number;
  /** every accepted message, parsed, in arrival order */
  messages: ParsedMail[];
  /** the next `count` messages are refused with `code` (4xx: temporary) */
  refuseNext(count: number, code?: number): void;
  /** refused deliveries so far */
  refused: number;
  stop(): Promise<void>;
}

export async function startSmtp(opts: { log?: (mail: ParsedMail) => void } = {}): Promise<SmtpReceiver> {
  const messages: ParsedMail[] = [];
  let refuse = { count: 0, code: 451 };
  const receiver: SmtpReceiver = {
    host: "127.0.0.1",
    port: 0,
    messages,
    refused: 0,
    refuseNext(count, code = 451) {
      refuse = { count, code };
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((mail) => {
          if (refuse.count > 0) {
            refuse.count--;
            receiver.refused++;
            const error = new Error("try again later") as Error & { responseCode: number };
            error.responseCode = refuse.code;
            callback(error);
            return;
          }
          messages.push(mail);
          opts.log?.(mail);
          callback();
        })
        .catch((error: Error) => callback(error));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.port = (server.server.address() as AddressInfo).port;
  return receiver;
}
