/**
 * Reads a Server-Sent Events body to its end, calling `onData` with each event's `data:`
 * line parsed as JSON and the time (performance.now()) the chunk holding it arrived.
 */
export async function readSse<T>(body: ReadableStream<Uint8Array> | null, onData: (data: T, at: number) => void): Promise<void> {
  if (!body) throw new Error('the SSE response has no body');
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const part of body as unknown as AsyncIterable<Uint8Array>) {
    const at = performance.now();
    buffered += decoder.decode(part, { stream: true });
    let i: number;
    while ((i = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, i);
      buffered = buffered.slice(i + 2);
      const data = event.split('\n').find((l) => l.startsWith('data: '));
      if (data) onData(JSON.parse(data.slice(6)) as T, at);
    }
  }
}
