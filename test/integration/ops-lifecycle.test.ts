import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../processors/core/s3/client.js';
import { applyLifecycle, DEFAULT_LIFECYCLE, lifecycleRules } from '../../processors/ops/lifecycle.js';
import { cli, ensureBuilt, requireServerWithin } from '../support/ops-lake.js';
import { hostPortOf, testSettings } from '../support/servers.js';

/**
 * Issue 6, data lifecycle: the local S3Proxy does not implement bucket lifecycle
 * configuration, so `sluice lifecycle apply` must say so (exit 2, the missing API named, the
 * rules printed); and the exact request is checked against a local HTTP server standing in
 * for S3: PUT /<bucket>?lifecycle with the three rules, which it stores and answers on
 * GET ?lifecycle, so the command's read-back returns them.
 */

const settings = testSettings();
const bucket = 'ops-lifecycle-bucket';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A minimal S3 endpoint for the lifecycle subresource of one bucket. */
class FakeS3 {
  readonly requests: Seen[] = [];
  stored: string | undefined;
  private server: http.Server | undefined;
  port = 0;

  constructor(initial?: string) {
    this.stored = initial;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        this.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const url = new URL(req.url!, 'http://fake');
        const xml = (status: number, text: string) => {
          res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': 'fake' });
          res.end(text);
        };
        if (url.pathname.replace(/\/$/, '') !== `/${bucket}` || !url.searchParams.has('lifecycle')) {
          return xml(404, '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>only the lifecycle of one bucket here</Message></Error>');
        }
        if (req.method === 'GET') {
          if (this.stored === undefined) {
            return xml(404, '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchLifecycleConfiguration</Code><Message>The lifecycle configuration does not exist</Message></Error>');
          }
          return xml(200, this.stored);
        }
        if (req.method === 'PUT') {
          this.stored = body;
          res.writeHead(200, { 'x-amz-request-id': 'fake' });
          return res.end();
        }
        return xml(405, '<?xml version="1.0" encoding="UTF-8"?><Error><Code>MethodNotAllowed</Code><Message>no</Message></Error>');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

/** The <Rule> elements of a lifecycle XML body, by <ID>. */
function rulesOf(xml: string): Map<string, string> {
  const rules = new Map<string, string>();
  for (const m of xml.matchAll(/<Rule>([\s\S]*?)<\/Rule>/g)) rules.set(/<ID>([^<]*)<\/ID>/.exec(m[1]!)![1]!, m[1]!.replace(/<ID>[^<]*<\/ID>/, ''));
  return rules;
}

const fakes: FakeS3[] = [];
async function fake(initial?: string): Promise<FakeS3> {
  const f = new FakeS3(initial);
  await f.start();
  fakes.push(f);
  return f;
}

beforeAll(async () => {
  await requireServerWithin('S3', hostPortOf(settings.s3.endpoint!));
  ensureBuilt();
});

afterAll(async () => {
  for (const f of fakes) await f.stop();
});

describe('sluice lifecycle apply', () => {
  it('against S3Proxy: exits 2 naming the missing API and printing the rules, nothing changed', async () => {
    const run = await cli(['lifecycle', 'apply']);
    expect(run.code, run.stdout + run.stderr).toBe(2);
    expect(run.stderr).toContain(`the S3 server at ${settings.s3.endpoint} does not implement bucket lifecycle configuration`);
    expect(run.stderr).toContain('Nothing was changed');
    for (const text of ['"ID": "sluice-lake-to-cold"', '"StorageClass": "GLACIER_IR"', '"Days": 365', '"ID": "sluice-reports-expire"', '"ID": "sluice-abort-incomplete-uploads"', '"DaysAfterInitiation": 7']) {
      expect(run.stderr).toContain(text);
    }
  });

  it('sends PUT /<bucket>?lifecycle with the three rules and reads them back (applyLifecycle against a stand-in S3)', async () => {
    const foreign = '<?xml version="1.0" encoding="UTF-8"?><LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ID>someone-elses-rule</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>';
    const s3 = await fake(foreign);
    const client = createS3Client({ ...settings.s3, endpoint: s3.endpoint, forcePathStyle: true });
    const rules = lifecycleRules(DEFAULT_LIFECYCLE);
    const result = await applyLifecycle(client, bucket, rules, s3.endpoint);

    const puts = s3.requests.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(1);
    const put = puts[0]!;
    expect(put.url).toMatch(new RegExp(`^/${bucket}/?\\?lifecycle(=|&|$)`));
    expect(put.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=sluice\//);
    // S3 refuses a lifecycle PUT without an integrity checksum.
    expect(Object.keys(put.headers).some((h) => h === 'content-md5' || h.startsWith('x-amz-checksum-'))).toBe(true);
    expect(put.body).toMatch(/^(<\?xml[^>]*\?>)?<LifecycleConfiguration xmlns="http:\/\/s3\.amazonaws\.com\/doc\/2006-03-01\/">/);
    const sent = rulesOf(put.body);
    expect([...sent.keys()]).toEqual(['sluice-lake-to-cold', 'sluice-reports-expire', 'sluice-abort-incomplete-uploads']);
    const lake = sent.get('sluice-lake-to-cold')!;
    expect(lake).toContain('<Filter><Prefix>lake/</Prefix></Filter>');
    expect(lake).toContain('<Status>Enabled</Status>');
    expect(lake).toMatch(/<Transition>(<Days>365<\/Days><StorageClass>GLACIER_IR<\/StorageClass>|<StorageClass>GLACIER_IR<\/StorageClass><Days>365<\/Days>)<\/Transition>/);
    expect(lake).not.toContain('<Expiration>');
    const reports = sent.get('sluice-reports-expire')!;
    expect(reports).toContain('<Filter><Prefix>reports/</Prefix></Filter>');
    expect(reports).toContain('<Expiration><Days>90</Days></Expiration>');
    expect(reports).toContain('<Status>Enabled</Status>');
    const uploads = sent.get('sluice-abort-incomplete-uploads')!;
    expect(uploads).toContain('<AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload>');
    expect(uploads).toMatch(/<Filter>(<Prefix><\/Prefix>|<Prefix\/>)<\/Filter>/);

    // GET (what was there), PUT, GET (read back).
    expect(s3.requests.map((r) => r.method)).toEqual(['GET', 'PUT', 'GET']);
    expect(result.replaced).toEqual(['someone-elses-rule']);
    expect(result.readBack.map((r) => r.ID)).toEqual(['sluice-lake-to-cold', 'sluice-reports-expire', 'sluice-abort-incomplete-uploads']);
    expect(result.readBack[0]).toMatchObject({ Status: 'Enabled', Filter: { Prefix: 'lake/' }, Transitions: [{ Days: 365, StorageClass: 'GLACIER_IR' }] });
    expect(result.readBack[1]).toMatchObject({ Status: 'Enabled', Filter: { Prefix: 'reports/' }, Expiration: { Days: 90 } });
    expect(result.readBack[2]).toMatchObject({ Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } });
  });

  it('the CLI against the stand-in: options reach the rules and the read-back is printed; --dry-run sends nothing', async () => {
    const s3 = await fake();
    const env = { SLUICE_S3_ENDPOINT: s3.endpoint, SLUICE_S3_BUCKET: bucket };
    const dry = await cli(['lifecycle', 'apply', '--dry-run', '--cold-after-days', '400'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would put on s3://${bucket}`);
    expect(dry.stdout).toContain('"Days": 400');
    expect(s3.requests).toEqual([]);

    const run = await cli(['lifecycle', 'apply', '--cold-after-days', '400', '--cold-storage-class', 'DEEP_ARCHIVE', '--expire-reports-after-days', '30'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`s3://${bucket} lifecycle, as read back:`);
    const sent = rulesOf(s3.stored!);
    expect(sent.get('sluice-lake-to-cold')).toMatch(/<Days>400<\/Days>/);
    expect(sent.get('sluice-lake-to-cold')).toContain('<StorageClass>DEEP_ARCHIVE</StorageClass>');
    expect(sent.get('sluice-reports-expire')).toContain('<Expiration><Days>30</Days></Expiration>');
    const printed = JSON.parse(run.stdout.slice(run.stdout.indexOf('['))) as { ID: string }[];
    expect(printed.map((r) => r.ID)).toEqual(['sluice-lake-to-cold', 'sluice-reports-expire', 'sluice-abort-incomplete-uploads']);
  });
});
