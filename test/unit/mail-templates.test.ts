import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { buildMailLink, defaultPublicUrl, describeDuration, passwordResetMail, verificationMail } from '../../src/mail/templates.js';

const TOKEN = 'AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';

describe('buildMailLink', () => {
  it('appends the route and the token to PUBLIC_URL', () => {
    expect(buildMailLink('http://localhost:4000', 'verify-email', TOKEN)).toBe(`http://localhost:4000/verify-email?token=${TOKEN}`);
  });

  it('keeps a path of PUBLIC_URL, with or without a trailing slash', () => {
    for (const base of ['https://example.com/accounts', 'https://example.com/accounts/']) {
      expect(buildMailLink(base, 'reset-password', TOKEN)).toBe(`https://example.com/accounts/reset-password?token=${TOKEN}`);
    }
  });

  it('drops a query or fragment PUBLIC_URL carries, so the token is the only parameter', () => {
    expect(buildMailLink('https://example.com/?next=/x#top', 'verify-email', TOKEN)).toBe(`https://example.com/verify-email?token=${TOKEN}`);
  });
});

describe('defaultPublicUrl', () => {
  it('points at HOST and PORT when PUBLIC_URL is not set', () => {
    expect(defaultPublicUrl({ host: '127.0.0.1', port: 4000 })).toBe('http://127.0.0.1:4000');
    expect(defaultPublicUrl({ host: 'auth.internal', port: 8080 })).toBe('http://auth.internal:8080');
    expect(defaultPublicUrl({ host: 'localhost', port: 80 })).toBe('http://localhost');
  });

  it('shows a wildcard address (0.0.0.0, ::) as localhost, and brackets an IPv6 address', () => {
    expect(defaultPublicUrl({ host: '0.0.0.0', port: 5000 })).toBe('http://localhost:5000');
    expect(defaultPublicUrl({ host: '::', port: 5000 })).toBe('http://localhost:5000');
    expect(defaultPublicUrl({ host: '::1', port: 5000 })).toBe('http://[::1]:5000');
  });

  it('refuses a HOST that cannot be a link\'s host with a ConfigError naming HOST and PUBLIC_URL', () => {
    expect(() => defaultPublicUrl({ host: 'not a host', port: 4000 })).toThrow(ConfigError);
    expect(() => defaultPublicUrl({ host: 'not a host', port: 4000 })).toThrow(/HOST.*PUBLIC_URL/);
  });
});

describe('describeDuration', () => {
  it('says hours for whole hours and minutes otherwise', () => {
    expect(describeDuration(86_400)).toBe('24 hours');
    expect(describeDuration(3600)).toBe('1 hour');
    expect(describeDuration(5400)).toBe('90 minutes');
    expect(describeDuration(60)).toBe('1 minute');
    expect(describeDuration(45)).toBe('45 seconds');
  });
});

describe('mail templates', () => {
  const link = `https://example.com/verify-email?token=${TOKEN}`;

  it('gives the verification mail a clear subject, and the link in both the text and the HTML part', () => {
    const mail = verificationMail({ to: 'ann@example.com', name: 'Ann', link, token: TOKEN, expiresInSeconds: 86_400 });
    expect(mail).toMatchObject({ to: 'ann@example.com', subject: 'Verify your email address' });
    expect(mail.text).toContain(`\n${link}\n`);
    expect(mail.text).toContain('Hello Ann,');
    expect(mail.text).toContain('expires in 24 hours');
    expect(mail.html).toContain(`<a href="${link}">Verify my email address</a>`);
  });

  it('also gives the token on a short line of its own, in both parts, for copying by hand', () => {
    for (const mail of [
      verificationMail({ to: 'ann@example.com', name: 'Ann', link, token: TOKEN, expiresInSeconds: 60 }),
      passwordResetMail({ to: 'ann@example.com', name: 'Ann', link, token: TOKEN, expiresInSeconds: 60 }),
    ]) {
      expect(mail.text).toContain(`\nToken: ${TOKEN}\n`);
      // Short enough that quoted-printable never breaks it (at most 76 characters a line).
      expect(`Token: ${TOKEN}`.length).toBeLessThanOrEqual(76);
      expect(mail.html).toContain(`<p>Token: ${TOKEN}</p>`);
    }
  });

  it('gives the reset mail its own subject and says what happens when it is ignored', () => {
    const mail = passwordResetMail({ to: 'ann@example.com', name: null, link, token: TOKEN, expiresInSeconds: 3600 });
    expect(mail.subject).toBe('Reset your password');
    expect(mail.text.startsWith('Hello,\n')).toBe(true);
    expect(mail.text).toContain('your password stays as it is');
    expect(mail.text).toContain('expires in 1 hour');
  });

  it('escapes the name in the HTML part', () => {
    const mail = verificationMail({ to: 'x@example.com', name: '<img src=x onerror=alert(1)> & "q" \'s', link, token: TOKEN, expiresInSeconds: 60 });
    expect(mail.html).toContain('Hello &lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot; &#39;s,');
    expect(mail.html).not.toContain('<img');
  });

  it('keeps the name on one short line, so it cannot add paragraphs to the mail', () => {
    const name = `Bob\r\n\r\nYour account is locked, call +1 555 0100\u0007${'x'.repeat(200)}`;
    const mail = verificationMail({ to: 'x@example.com', name, link, token: TOKEN, expiresInSeconds: 60 });
    const greeting = mail.text.split('\n')[0]!;
    expect(greeting).toMatch(/^Hello Bob Your account is locked, call \+1 555 0100 x+,$/);
    expect([...greeting].length).toBeLessThanOrEqual('Hello ,'.length + 64);
    expect(mail.text.split('\n')[1]).toBe('');
  });

  it('escapes the link in the HTML part', () => {
    const mail = verificationMail({ to: 'x@example.com', name: null, link: 'https://example.com/a&b"c', token: TOKEN, expiresInSeconds: 60 });
    expect(mail.html).toContain('href="https://example.com/a&amp;b&quot;c"');
  });
});
