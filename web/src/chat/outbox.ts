// What this person wrote and the chat bot has not yet confirmed: sent to the bot (so
// moderation comes first), sent again with the same id should no receipt come or the bot
// change, and kept across rooms until a bot takes it.

import type { Room } from 'livekit-client';

import { outgoingAttributes, TOPIC_CHAT } from './protocol';

/** No receipt within this: send again (same id; the store keeps one copy). Doubles each
 * time, up to RESEND_MAX_MS. */
const RESEND_MS = 4000;
const RESEND_MAX_MS = 30000;

interface Outgoing {
  id: string;
  text: string;
  to: string[];
  replyTo: string;
  /** The bot it last went to, when, and how long to wait for its receipt. */
  bot: string;
  sentAt: number;
  wait: number;
  sending: boolean;
}

export class Outbox {
  private readonly items = new Map<string, Outgoing>();

  get size(): number {
    return this.items.size;
  }

  /** To send; replaces what still waits under the same id (an edit, a second try). */
  queue(id: string, text: string, to: string[], replyTo: string): void {
    this.items.set(id, { id, text, to, replyTo, bot: '', sentAt: 0, wait: RESEND_MS, sending: false });
  }

  /** The receipt came, or there is nothing more to send. */
  delete(id: string): void {
    this.items.delete(id);
  }

  /** The room is gone: what has no receipt goes to the next room's bot. */
  forgetBot(): void {
    for (const out of this.items.values()) out.bot = '';
  }

  /** Send what has no receipt: to a new bot at once, to the same one again after a while. */
  flush(room: Room, bot: string): void {
    const now = Date.now();
    for (const out of this.items.values()) {
      if (out.sending) continue;
      if (out.bot === bot && now - out.sentAt < out.wait) continue;
      if (out.bot === bot) out.wait = Math.min(out.wait * 2, RESEND_MAX_MS);
      else out.wait = RESEND_MS;
      void this.transmit(room, bot, out);
    }
  }

  private async transmit(room: Room, bot: string, out: Outgoing): Promise<void> {
    out.sending = true;
    out.bot = bot;
    out.sentAt = Date.now();
    const attributes = outgoingAttributes(out.to, out.replyTo);
    try {
      const writer = await room.localParticipant.streamText({
        topic: TOPIC_CHAT, destinationIdentities: [bot], streamId: out.id, attributes,
      });
      await writer.write(out.text);
      await writer.close();
    } catch {
      out.sentAt = 0; // try again at the next tick
    } finally {
      out.sending = false;
    }
  }
}
