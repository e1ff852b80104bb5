/**
 * A real SMTP server on loopback (the smtp-server package) that keeps every message it
 * receives, so tests follow the emailed flows the way a user would: read the mail, take the link.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  /** Envelope recipients. */
  to: string[];
  /** The message as received (RFC 822, transfer-encoded). */
  raw: string;
}

export interface TestSmtpServer {
  /**
   * SMTP_URL for the app. The server offers STARTTLS with its built-in certificate, which a
   * client rightly refuses; `ignoreTLS` (a nodemailer option, passed as a query parameter of
   * the URL) keeps the client on plain SMTP, as for a local relay in development.
   */
  url: string;
  /** Every message received so far. */
  readonly mails: readonly ReceivedMail[];
  /** Messages received for an address. */
  mailsTo(address: string): ReceivedMail[];
  /** The next message to an address that no earlier call has returned, waiting for it if need be. */
  nextMailTo(address: string, timeoutMs?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1 and a free port. */
export async function startSmtpServer(): Promise<TestSmtpServer> {
  const mails: ReceivedMail[] = [];
  const taken = new Set<ReceivedMail>();
  const waiters: { address: string; deliver: (mail: ReceivedMail) => void }[] = [];
  const addressed = (mail: ReceivedMail, address: string) => mail.to.includes(address.toLowerCase());

  function hand(mail: ReceivedMail) {
    const index = waiters.findIndex((w) => addressed(mail, w.address));
    if (index === -1) return;
    const [waiter] = waiters.splice(index, 1);
    taken.add(mail);
    waiter!.deliver(mail);
  }

  const server = new SMTPServer({
    authOptional: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', callback);
      stream.on('end', () => {
        const mail = {
          to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
          raw: Buffer.concat(chunks).toString('utf8'),
        };
        mails.push(mail);
        hand(mail);
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;

  return {
    url: `smtp://127.0.0.1:${port}?ignoreTLS=true`,
    mails,
    mailsTo: (address) => mails.filter((m) => addressed(m, address)),
    // Mail goes out in the background over a real socket: allow for a loaded machine.
    nextMailTo(address, timeoutMs = 15_000) {
      const ready = mails.find((m) => !taken.has(m) && addressed(m, address));
      if (ready) {
        taken.add(ready);
        return Promise.resolve(ready);
      }
      return new Promise((resolve, reject) => {
        const waiter = {
          address,
          deliver: (mail: ReceivedMail) => {
            clearTimeout(timer);
            resolve(mail);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no mail to ${address} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The message with quoted-printable soft line breaks and escapes undone (our mails are ASCII). */
export function decodeMail(raw: string): string {
  return raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** The first link of a mail to a route (verify-email, reset-password), and the token in it. */
export function linkIn(mail: ReceivedMail | string, route: 'verify-email' | 'reset-password'): { link: string; token: string } {
  const text = decodeMail(typeof mail === 'string' ? mail : mail.raw);
  const match = new RegExp(`(https?://[^\\s"<>]*/${route}\\?token=([A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+))`).exec(text);
  if (!match) throw new Error(`no ${route} link in the mail:\n${text}`);
  return { link: match[1]!, token: match[2]! };
}

/** A header of a received message (unfolded), or undefined. */
export function headerOf(mail: ReceivedMail, name: string): string | undefined {
  const head = mail.raw.split(/\r?\n\r?\n/)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  const line = head.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}
