import net from 'node:net';
import { networkInterfaces } from 'node:os';

/** An IPv4 address of this machine besides loopback, to prove a listener is (not) reachable from outside. */
export function externalIpv4(): string {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  if (!address) throw new Error('this test needs a network interface besides loopback (an IPv4 address) to connect from');
  return address;
}

/** Whether a TCP connection to host:port opens within 2 s. */
export const connects = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host, port, timeout: 2000 });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
