// Reactions on chat messages: the totals the bot counts (asked for once per bot, for messages
// from before this person arrived, then kept up to date by its reaction packets), and which
// ones this person pressed (shown at once; undone should the bot refuse one).

import type { Room } from 'livekit-client';

import { sendJson } from '../session';
import { announce } from '../ui';
import { cleanCounts, newId, RPC_REACTIONS, TOPIC_REACTION, type ReactionUpdate } from './protocol';

export class Reactions {
  private readonly counts = new Map<string, Record<string, number>>();
  private readonly mine = new Set<string>(); // "messageId emoji" I reacted with
  private readonly refs = new Map<string, string>(); // my reaction's id → its key
  private readonly asked = new Set<string>(); // bots asked for the totals

  countsOf(messageId: string): Record<string, number> {
    return this.counts.get(messageId) ?? {};
  }

  pressed(messageId: string, emoji: string): boolean {
    return this.mine.has(`${messageId} ${emoji}`);
  }

  /** A reaction packet from the bot: new totals, and mine when I reacted (from another tab). */
  update(reaction: ReactionUpdate, me: string): void {
    if (reaction.counts) this.counts.set(reaction.messageId, reaction.counts);
    if (reaction.sender === me && reaction.emoji !== null) this.mine.add(`${reaction.messageId} ${reaction.emoji}`);
  }

  /** The bot refused what `ref` names: if it was my reaction, not pressed after all; gives the
   * message it was on. */
  refused(ref: string): string | undefined {
    const reaction = ref ? this.refs.get(ref) : undefined;
    if (!reaction) return undefined;
    this.mine.delete(reaction);
    return reaction.slice(0, reaction.lastIndexOf(' '));
  }

  /** Press `emoji` on a message, through the bot; `changed` shows the message again. */
  send(room: Room, bot: string, messageId: string, emoji: string, changed: () => void): void {
    const key = `${messageId} ${emoji}`;
    this.mine.add(key); // shown pressed at once; the count comes from the bot
    const id = newId();
    this.refs.set(id, key);
    changed();
    sendJson(room, TOPIC_REACTION, { id, emoji, messageId }, [bot]).catch(() => {
      this.mine.delete(key);
      changed();
      announce('Your reaction was not sent. Try again.');
    });
  }

  /** The totals for messages sent before this person arrived (their history), once per bot. */
  async load(room: Room, bot: string, loaded: (messageId: string) => void): Promise<void> {
    if (this.asked.has(bot)) return;
    this.asked.add(bot);
    try {
      const answer = await room.localParticipant.performRpc({ destinationIdentity: bot, method: RPC_REACTIONS, payload: '{}' });
      const body = JSON.parse(answer) as { messages?: Record<string, Record<string, unknown>> };
      for (const [id, counts] of Object.entries(body.messages ?? {})) {
        if (!this.counts.has(id)) this.counts.set(id, cleanCounts(counts));
        loaded(id);
      }
    } catch {
      // Totals come again with the next reaction; nothing to tell the person.
    }
  }
}
