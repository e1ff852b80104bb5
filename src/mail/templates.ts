import { ConfigError } from '../config.js';
import type { MailMessage } from './mailer.js';

/**
 * Where the links of mails point when PUBLIC_URL is not set: this server, as HOST and PORT
 * configure it (`http://<host>:<port>`). A wildcard address (0.0.0.0, ::) is not one a browser
 * can open, so it is shown as localhost.
 */
export function defaultPublicUrl({ host, port }: { host: string; port: number }): string {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '[::]';
  const name = wildcard ? 'localhost' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  if (!URL.canParse(`http://${name}:${port}`)) {
    throw new ConfigError(`HOST: "${host}" cannot be the host of links in mails; set PUBLIC_URL.`);
  }
  return new URL(`http://${name}:${port}`).origin;
}

/** The pages of the site (at PUBLIC_URL) that take an emailed token. */
export type MailRoute = 'verify-email' | 'reset-password';

/** What a mail carrying a one-time link needs. */
export interface LinkMail {
  to: string;
  /** The account's display name, if any: user input. */
  name: string | null;
  link: string;
  /** The token the link carries, also given on a line of its own for copying by hand. */
  token: string;
  expiresInSeconds: number;
}

/** `<publicUrl>/<route>?token=<token>`, keeping any path PUBLIC_URL has. */
export function buildMailLink(publicUrl: string, route: MailRoute, token: string): string {
  const url = new URL(publicUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${route}`;
  url.search = new URLSearchParams({ token }).toString();
  url.hash = '';
  return url.toString();
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

// The name is whatever the account holder typed. In a mail sent in our name it stays one short
// line (no paragraphs of someone's text under our letterhead) and is escaped in HTML.
const MAX_NAME_IN_MAIL = 64;
function greeting(name: string | null): string {
  const oneLine = [...(name ?? '').replace(/[\p{C}\s]+/gu, ' ').trim()].slice(0, MAX_NAME_IN_MAIL).join('').trim();
  return oneLine ? `Hello ${oneLine},` : 'Hello,';
}

/** "24 hours", "1 hour", "30 minutes". */
export function describeDuration(seconds: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (seconds >= 3600 && seconds % 3600 === 0) return plural(seconds / 3600, 'hour');
  if (seconds >= 60) return plural(Math.round(seconds / 60), 'minute');
  return plural(seconds, 'second');
}

interface Content {
  subject: string;
  intro: string;
  action: string;
  ignore: string;
}

function render(mail: LinkMail, content: Content): MailMessage {
  const hello = greeting(mail.name);
  const expiry = `The link works once and expires in ${describeDuration(mail.expiresInSeconds)}.`;
  // The token also gets a short line of its own: a wrapped or quoted-printable link is hard to
  // copy, and a development outbox is read by hand.
  const token = `Token: ${mail.token}`;
  const text = [hello, '', content.intro, '', `${content.action}:`, mail.link, '', token, '', expiry, content.ignore, ''].join('\n');
  const link = escapeHtml(mail.link);
  const html = [
    '<!doctype html>',
    `<html><head><meta charset="utf-8"><title>${escapeHtml(content.subject)}</title></head>`,
    '<body style="font-family: sans-serif; line-height: 1.5">',
    `<p>${escapeHtml(hello)}</p>`,
    `<p>${escapeHtml(content.intro)}</p>`,
    `<p><a href="${link}">${escapeHtml(content.action)}</a></p>`,
    `<p>If the link does not work, copy this address into your browser:<br>${link}</p>`,
    `<p>${escapeHtml(token)}</p>`,
    `<p>${escapeHtml(expiry)} ${escapeHtml(content.ignore)}</p>`,
    '</body></html>',
    '',
  ].join('\n');
  return { to: mail.to, subject: content.subject, text, html };
}

/** The mail with the link that verifies an address. */
export function verificationMail(mail: LinkMail): MailMessage {
  return render(mail, {
    subject: 'Verify your email address',
    intro: 'Please confirm that this is your email address.',
    action: 'Verify my email address',
    ignore: 'If you did not ask for this, you can ignore this mail.',
  });
}

/** The mail with the link that sets a new password. */
export function passwordResetMail(mail: LinkMail): MailMessage {
  return render(mail, {
    subject: 'Reset your password',
    intro: 'Someone (hopefully you) asked to reset the password of the account with this email address.',
    action: 'Choose a new password',
    ignore: 'If you did not ask for this, ignore this mail: your password stays as it is.',
  });
}
