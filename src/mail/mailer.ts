import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { ConfigError, type Config } from '../config.js';
import type { Logger } from '../logger.js';

/** One mail, with a plain-text and an HTML body. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** Sends mail, over SMTP or into the development outbox. */
export interface Mailer {
  /** Resolves once the SMTP server has accepted the message (or the outbox file is written). */
  send(message: MailMessage): Promise<void>;
}

/**
 * Sends mail over SMTP_URL (`smtp://` or `smtps://`, with nodemailer's options as query
 * parameters, e.g. `?requireTLS=true`). Without SMTP_URL, outside production, mails are
 * written to DATA_DIR/outbox/ instead, each as an .eml file and a .txt file of its text part;
 * in production that is a start-up error.
 */
export function createMailer(config: Pick<Config, 'production' | 'dataDir' | 'mail'>, logger: Logger): Mailer {
  const { smtpUrl, from } = config.mail;
  if (smtpUrl) {
    const transport = nodemailer.createTransport(smtpUrl);
    return {
      async send(message) {
        const info = await transport.sendMail({ from, ...message });
        logger.info({ messageId: info.messageId, subject: message.subject }, 'mail sent');
      },
    };
  }
  if (config.production) {
    throw new ConfigError(
      'SMTP_URL is required in production (e.g. smtps://user:password@smtp.example.com): ' +
        'without it, email verification and password reset mails cannot be sent.',
    );
  }
  const outbox = path.resolve(config.dataDir, 'outbox');
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true });
  return {
    async send(message) {
      const info = await transport.sendMail({ from, ...message });
      if (!Buffer.isBuffer(info.message)) throw new Error('the stream transport did not buffer the message');
      // Mode 0600: the files hold a live token. For the same reason the log names the files, never the link.
      await mkdir(outbox, { recursive: true, mode: 0o700 });
      const base = path.join(outbox, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}`);
      const file = `${base}.eml`;
      const textFile = `${base}.txt`;
      await writeFile(file, info.message, { mode: 0o600 });
      // The .eml is quoted-printable (`token=3D…`, lines broken with `=`); the .txt is the text
      // part as sent, so the link and token can be copied from any editor.
      await writeFile(textFile, `To: ${message.to}\nSubject: ${message.subject}\n\n${message.text}`, { mode: 0o600 });
      logger.info(
        { file, textFile, subject: message.subject },
        'mail written to the outbox (no SMTP_URL): its .txt file holds the link and the token',
      );
    },
  };
}
