// A thrown value as words for a message. livekit-client, fetch and the media APIs reject with
// Errors, DOMExceptions and now and then a bare string or event: every message that quotes a
// failure goes through here so that none of them shows "[object Object]" differently.

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
