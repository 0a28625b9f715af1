import { simpleParser, type ParsedMail } from 'mailparser';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * Real receivers for report notifications: an SMTP server (smtp-server, no TLS, no auth)
 * that parses every message it accepts (mailparser), and a plain HTTP server standing in
 * for a Slack-compatible incoming webhook. Both record what they got.
 */

export interface CapturedMail {
  envelopeFrom: string;
  envelopeTo: string[];
  mail: ParsedMail;
}

export interface SmtpCapture {
  port: number;
  url: string;
  mails: CapturedMail[];
  close(): Promise<void>;
}

export async function startSmtpCapture(): Promise<SmtpCapture> {
  const mails: CapturedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (mail) => {
          mails.push({
            envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            envelopeTo: session.envelope.rcptTo.map((r) => r.address),
            mail,
          });
          callback();
        },
        (error: Error) => callback(error),
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    mails,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface WebhookCall {
  path: string;
  contentType: string | undefined;
  body: string;
}

export interface WebhookCapture {
  url: string;
  calls: WebhookCall[];
  close(): Promise<void>;
}

export interface WebhookAnswer {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

/** Answers 200 "ok" as Slack does (or the answer given), after recording the call. */
export async function startWebhookCapture(path: string, answer: WebhookAnswer = { status: 200, body: 'ok' }): Promise<WebhookCapture> {
  const calls: WebhookCall[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers }).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
