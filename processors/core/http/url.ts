/**
 * URLs as they may be shown: in logs, statuses and answers. A query string may carry a key
 * or a signature, and a webhook's path is its secret, so neither is ever shown whole.
 */

/** The URL (absolute, or a request's path) without its query string and fragment. */
export function withoutQuery(url: string): string {
  const end = url.search(/[?#]/);
  return end < 0 ? url : url.slice(0, end);
}

/** Only the origin of a URL (`https://hooks.slack.com/…`): for targets whose path or query is the secret. */
export function originOnly(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return '(invalid url)';
  }
}
