// Live captions (lk/transcription.py): while the meeting is transcribed, the transcriber sends
// each caption as a text stream on `lk.transcription` on behalf of the speaker (the stream's
// sender is the speaker), with `lk.segment_id` (one id for a segment's interim texts and its
// final text), `lk.transcription_final` and `lk.transcribed_track_id`. Each text is the
// segment's whole text so far, so an interim replaces the one before it, and the final the
// last interim. The panel shows the last few lines with the speaker's name; a switch turns
// them off (kept in this browser).

import { Room } from 'livekit-client';
import type { TextStreamReader } from 'livekit-client';

import type { TokenResponse } from './api';
import type { Panel } from './meeting_view';
import { handleTextStreams } from './streams';
import { displayName } from './tiles';
import { append, h } from './ui';

export const TOPIC_CAPTIONS = 'lk.transcription';
const ATTR_SEGMENT_ID = 'lk.segment_id';
const ATTR_FINAL = 'lk.transcription_final';
const PREFERENCE = 'tp.captions';
/** Caption lines kept on screen. */
const LINES = 3;

interface Line {
  segment: string;
  final: boolean;
  el: HTMLLIElement;
  text: HTMLElement;
}

let panels = 0;

function storedPreference(): boolean {
  try {
    return localStorage.getItem(PREFERENCE) !== 'off';
  } catch {
    return true;
  }
}

export class CaptionsPanel implements Panel {
  readonly element: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly hint: HTMLElement;
  private readonly toggle: HTMLButtonElement;
  private readonly spoken: HTMLElement;
  private room: Room | null = null;
  private letGo: (() => void) | null = null;
  private on = storedPreference();
  private readonly lines: Line[] = [];

  constructor() {
    const title = `captions-title-${++panels}`;
    this.toggle = h('button', { type: 'button', role: 'switch', class: 'captions-switch', onclick: () => this.setOn(!this.on) },
      h('span', { class: 'switch-track', 'aria-hidden': 'true' }), 'Show captions');
    this.hint = h('p', { class: 'captions-hint muted' });
    this.list = h('ol', { class: 'captions-lines', 'aria-label': 'Captions', 'data-testid': 'captions' });
    // Screen readers hear finished lines only, not every interim guess.
    this.spoken = h('div', { class: 'visually-hidden', 'aria-live': 'polite' });
    this.element = h('section', { class: 'card captions-panel', 'aria-labelledby': title },
      h('div', { class: 'captions-head' }, h('h2', { id: title }, 'Captions'), this.toggle),
      this.hint, this.list, this.spoken);
    this.render();
  }

  attach(room: Room, _token: TokenResponse): void {
    if (this.room === room) return;
    this.detach();
    this.room = room;
    this.letGo = handleTextStreams(room, TOPIC_CAPTIONS, (reader, from) => void this.onStream(reader, from.identity));
  }

  detach(): void {
    this.room = null;
    this.letGo?.();
    this.letGo = null;
  }

  private setOn(on: boolean): void {
    this.on = on;
    try {
      localStorage.setItem(PREFERENCE, on ? 'on' : 'off');
    } catch {
      // private browsing: the choice holds for this page only
    }
    this.render();
  }

  private render(): void {
    this.toggle.setAttribute('aria-checked', String(this.on));
    this.list.hidden = !this.on || this.lines.length === 0;
    this.hint.hidden = this.on && this.lines.length > 0;
    this.hint.textContent = this.on
      ? 'Captions appear here while the meeting is transcribed.'
      : 'Captions are off.';
  }

  private speaker(identity: string): string {
    const room = this.room;
    if (!room) return identity;
    if (identity === room.localParticipant.identity) return 'You';
    const participant = room.remoteParticipants.get(identity);
    return participant ? displayName(participant) : identity;
  }

  private async onStream(reader: TextStreamReader, from: string): Promise<void> {
    const attrs = reader.info.attributes ?? {};
    let text: string;
    try {
      text = await reader.readAll();
    } catch {
      return;
    }
    const segment = attrs[ATTR_SEGMENT_ID] || reader.info.id;
    const final = attrs[ATTR_FINAL] === 'true';
    this.show(from, segment, text.trim(), final);
  }

  private show(identity: string, segment: string, text: string, final: boolean): void {
    let line = this.lines.find((l) => l.segment === segment);
    if (line?.final) return; // a late interim after its final
    if (!text) {
      if (line && final) this.drop(line);
      return;
    }
    if (!line) {
      const textEl = h('span', { class: 'caption-text' });
      const el = h('li', { class: 'caption' }, h('strong', { class: 'caption-speaker' }, `${this.speaker(identity)}: `), textEl);
      line = { segment, final, el, text: textEl };
      this.lines.push(line);
      append(this.list, el);
      while (this.lines.length > LINES) this.drop(this.lines[0]!);
    }
    line.final = final;
    line.text.textContent = text;
    line.el.classList.toggle('interim', !final);
    if (final && this.on) this.spoken.textContent = `${this.speaker(identity)}: ${text}`;
    this.render();
  }

  private drop(line: Line): void {
    line.el.remove();
    this.lines.splice(this.lines.indexOf(line), 1);
  }
}
