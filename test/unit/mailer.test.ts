import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { createMailer } from '../../src/mail/mailer.js';
import { buildMailLink, verificationMail } from '../../src/mail/templates.js';
import { decodeMail, startSmtpServer } from '../support/smtp.js';

const TOKEN = 'AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const FROM = 'authgraph <no-reply@example.test>';

/** A logger whose lines are kept, to check what reaches the log. */
function capturingLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const message = () =>
  verificationMail({ to: 'ann@example.test', name: 'Ann', link: buildMailLink('http://localhost:4000', 'verify-email', TOKEN), token: TOKEN, expiresInSeconds: 3600 });

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'authgraph-mailer-'));
  dirs.push(dir);
  return dir;
};

describe('createMailer', () => {
  it('without SMTP_URL outside production, writes the mail to DATA_DIR/outbox and logs the file, never the link', async () => {
    const dataDir = tempDir();
    const { logger, lines } = capturingLogger();
    const mailer = createMailer({ production: false, dataDir, mail: { smtpUrl: undefined, from: FROM } }, logger);
    await mailer.send(message());

    const file = readdirSync(path.join(dataDir, 'outbox')).find((name) => name.endsWith('.eml'));
    const full = path.join(dataDir, 'outbox', file!);
    const raw = readFileSync(full, 'utf8');
    expect(raw).toMatch(/^From: authgraph <no-reply@example.test>$/m);
    expect(raw).toMatch(/^Subject: Verify your email address$/m);
    expect(decodeMail(raw)).toContain(`http://localhost:4000/verify-email?token=${TOKEN}`);

    const log = lines.join('');
    expect(log).toContain(JSON.stringify(full));
    expect(log).not.toContain(TOKEN.split('.')[1]);
    expect(log).not.toContain('verify-email?');
  });

  it('writes next to each .eml a .txt of the text part, readable as is: the link and a Token line, unencoded', async () => {
    const dataDir = tempDir();
    const { logger, lines } = capturingLogger();
    const mailer = createMailer({ production: false, dataDir, mail: { smtpUrl: undefined, from: FROM } }, logger);
    await mailer.send(message());

    const outbox = path.join(dataDir, 'outbox');
    const files = readdirSync(outbox).sort();
    expect(files).toHaveLength(2);
    const [eml, txt] = files as [string, string];
    expect(eml).toMatch(/\.eml$/);
    expect(txt).toBe(eml.replace(/\.eml$/, '.txt'));
    const textFile = path.join(outbox, txt);
    expect(statSync(textFile).mode & 0o777).toBe(0o600);

    // Read as plain text, no MIME decoding: what someone sees in an editor.
    const text = readFileSync(textFile, 'utf8');
    expect(text).toMatch(/^To: ann@example.test$/m);
    expect(text).toMatch(/^Subject: Verify your email address$/m);
    expect(text).toContain(`\nhttp://localhost:4000/verify-email?token=${TOKEN}\n`);
    expect(/^Token: (\S+)$/m.exec(text)?.[1]).toBe(TOKEN);
    expect(text).not.toMatch(/=3D|=\n/);

    const log = lines.join('');
    expect(log).toContain(JSON.stringify(textFile));
    expect(log).not.toContain(TOKEN.split('.')[1]);
  });

  it('refuses to start in production without SMTP_URL, with a ConfigError naming SMTP_URL', () => {
    const { logger } = capturingLogger();
    const create = () => createMailer({ production: true, dataDir: tempDir(), mail: { smtpUrl: undefined, from: FROM } }, logger);
    expect(create).toThrow(ConfigError);
    expect(create).toThrow(/SMTP_URL/);
  });

  it('with SMTP_URL, hands the mail to the SMTP server and logs no link', async () => {
    const smtp = await startSmtpServer();
    try {
      const { logger, lines } = capturingLogger();
      const mailer = createMailer({ production: true, dataDir: tempDir(), mail: { smtpUrl: smtp.url, from: FROM } }, logger);
      await mailer.send(message());
      expect(smtp.mails).toHaveLength(1);
      expect(smtp.mails[0]!.to).toEqual(['ann@example.test']);
      expect(decodeMail(smtp.mails[0]!.raw)).toContain(TOKEN);
      expect(lines.join('')).not.toContain(TOKEN.split('.')[1]);
    } finally {
      await smtp.close();
    }
  });
});
