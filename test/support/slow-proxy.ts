import net from 'node:net';

/**
 * A TCP proxy that delays every chunk a client sends by `delayMs` (in order) before passing
 * it to the target: S3 as slow as a distant region or a throttled bucket, in front of the
 * local S3Proxy, so that a runner's flush takes seconds and a rebalance lands inside it.
 * `record` sees every chunk a client sends, unchanged (what went over the wire).
 */
export class SlowProxy {
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly sockets: Set<net.Socket>,
  ) {}

  static async start(target: { host: string; port: number }, delayMs: number, record?: (chunk: Buffer) => void): Promise<SlowProxy> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      sockets.add(client).add(upstream);
      let chain = Promise.resolve();
      client.on('data', (chunk: Buffer) => {
        record?.(chunk);
        chain = chain.then(() => new Promise((r) => setTimeout(r, delayMs))).then(() => void (upstream.destroyed || upstream.write(chunk)));
      });
      client.on('end', () => void chain.then(() => upstream.end()));
      upstream.pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    return new SlowProxy(server, (server.address() as net.AddressInfo).port, sockets);
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
