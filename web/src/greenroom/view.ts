// The green room's page, as elements: the status banner, the camera card (your mirrored
// camera, what others will see, the preview and blur switches), the microphone card (the
// bot's level meter, the echo's meter, live or playback), the checks and the report.
// pages/greenroom.ts drives it.

import { clear, h } from '../ui';
import { Checklist } from './checklist';
import { Meter } from './meter';
import type { Mode, Phase } from './protocol';
import { ReportCard } from './report';

export const STEPS: Array<[string, string]> = [
  ['service', 'The service answers'],
  ['signin', 'Signed in'],
  ['livekit', 'Media server status'],
  ['camera', 'Camera access'],
  ['microphone', 'Microphone access'],
  ['connect', 'Connected to the media server'],
  ['publish', 'Audio and video sent'],
  ['echo', 'Your voice comes back'],
];

export type Tone = 'info' | 'ok' | 'warn' | 'bad';

/** A button the page offers with a message ("Reconnect"). */
export interface ButtonAction {
  label: string;
  onClick: () => void;
}

const PREVIEW_OFF = 'Turn on “Show what others will see” to see yourself as others will.';

export interface ViewActions {
  again(): void;
  reconnect(): void;
  startSound(): void;
  setMode(fromSeconds: boolean): void;
  setPreview(enabled: boolean): void;
  setBlur(enabled: boolean): void;
  refreshReport(): void;
}

const PHASES: Record<Phase, [string, string]> = {
  live: ['Live', 'You hear yourself as you speak.'],
  recording: ['Recording', 'Speak now: what you say is recorded, then played back to you.'],
  playing: ['Playing back', 'Listen: this is how others will hear you.'],
};

export class GreenRoomView {
  readonly banner: HTMLElement;
  private readonly bannerText: HTMLElement;
  private readonly bannerButton: HTMLButtonElement;
  readonly lost: HTMLElement;
  private readonly lostText: HTMLElement;
  readonly soundButton: HTMLButtonElement;

  readonly selfTile: HTMLElement;
  readonly previewTile: HTMLElement;
  readonly previewToggle: HTMLInputElement;
  readonly blurToggle: HTMLInputElement;
  readonly videoError: HTMLElement;
  readonly deviceHelp: HTMLElement;
  private readonly deviceHelpText: HTMLElement;

  readonly level: Meter;
  readonly echo: Meter;
  readonly modeLive: HTMLInputElement;
  readonly modePlayback: HTMLInputElement;
  readonly seconds: HTMLInputElement;
  readonly phase: HTMLElement;
  readonly audioError: HTMLElement;
  readonly audioSink: HTMLElement;

  readonly checklist: Checklist;
  readonly report: ReportCard;
  readonly content: HTMLElement[];

  constructor(actions: ViewActions) {
    this.bannerText = h('p', { 'data-testid': 'gr-status' }, 'Starting the checks…');
    this.bannerButton = h('button', { type: 'button', class: 'secondary', hidden: true });
    this.soundButton = h('button', { type: 'button', hidden: true, onclick: () => actions.startSound() }, 'Turn on sound');
    this.banner = h('div', { class: 'gr-banner', role: 'status', 'data-tone': 'info' },
      this.bannerText, this.soundButton, this.bannerButton);
    this.lostText = h('p', {});
    this.lost = h('div', { class: 'gr-banner gr-lost', role: 'alert', 'data-tone': 'bad', hidden: true },
      this.lostText,
      h('button', { type: 'button', onclick: () => actions.reconnect() }, 'Reconnect'));

    // Camera
    this.selfTile = h('figure', { class: 'tile gr-self', 'data-testid': 'self-view' },
      h('div', { class: 'gr-placeholder' }, 'Your camera appears here.'),
      h('figcaption', {}, 'Your camera (mirrored, as you see yourself)'));
    this.previewTile = h('figure', { class: 'tile gr-preview', 'data-testid': 'preview', 'data-state': 'off' },
      h('div', { class: 'gr-placeholder' }, PREVIEW_OFF),
      h('figcaption', {}, 'What others will see'));
    this.previewToggle = h('input', {
      type: 'checkbox', id: 'gr-preview', disabled: true,
      onchange: () => actions.setPreview(this.previewToggle.checked),
    });
    this.blurToggle = h('input', {
      type: 'checkbox', id: 'gr-blur', disabled: true,
      onchange: () => actions.setBlur(this.blurToggle.checked),
    });
    this.videoError = h('p', { class: 'gr-error', role: 'alert', 'data-testid': 'video-error' });
    this.deviceHelpText = h('div', {});
    this.deviceHelp = h('div', { class: 'gr-help', role: 'alert', hidden: true, 'data-testid': 'device-help' },
      this.deviceHelpText,
      h('p', {}, h('button', { type: 'button', onclick: () => actions.again() }, 'Try again')));
    const camera = h('section', { class: 'card', 'aria-labelledby': 'gr-camera-title' },
      h('h2', { id: 'gr-camera-title' }, 'Camera'),
      h('div', { class: 'gr-videos' }, this.selfTile, this.previewTile),
      h('div', { class: 'gr-toggles' },
        h('label', { for: 'gr-preview' }, this.previewToggle, 'Show what others will see'),
        h('label', { for: 'gr-blur' }, this.blurToggle, 'Blur my background')),
      this.videoError,
      this.deviceHelp);

    // Microphone and echo
    this.level = new Meter('gr-level', 'Your microphone', 'level-bar',
      'How loud the green room hears you. Speak normally: the bar should reach the middle.');
    this.echo = new Meter('gr-echo', 'Coming back to you', 'echo-bar',
      'The echo of your voice, as it arrives back in this page.');
    this.modeLive = h('input', { type: 'radio', name: 'gr-mode', id: 'gr-mode-live', value: 'live', checked: true, disabled: true, onchange: () => actions.setMode(false) });
    this.modePlayback = h('input', { type: 'radio', name: 'gr-mode', id: 'gr-mode-playback', value: 'playback', disabled: true, onchange: () => actions.setMode(false) });
    this.seconds = h('input', {
      type: 'number', id: 'gr-seconds', min: 1, max: 30, step: 1, value: 6, inputmode: 'numeric',
      disabled: true, 'aria-describedby': 'gr-seconds-hint', onchange: () => actions.setMode(true),
    });
    this.phase = h('p', { class: 'gr-phase', role: 'status', 'data-testid': 'phase', 'data-phase': '' });
    this.audioError = h('p', { class: 'gr-error', role: 'alert', 'data-testid': 'audio-error' });
    this.audioSink = h('div', { hidden: true });
    const audio = h('section', { class: 'card', 'aria-labelledby': 'gr-audio-title' },
      h('h2', { id: 'gr-audio-title' }, 'Microphone and echo'),
      this.level.element,
      this.echo.element,
      h('fieldset', { class: 'gr-mode' },
        h('legend', {}, 'How you hear yourself'),
        h('div', { class: 'row' },
          h('label', { for: 'gr-mode-live' }, this.modeLive, 'Live echo'),
          h('label', { for: 'gr-mode-playback' }, this.modePlayback, 'Record, then play back'),
          h('span', { class: 'gr-seconds' },
            h('label', { for: 'gr-seconds' }, 'Seconds to record'),
            this.seconds)),
        h('p', { id: 'gr-seconds-hint', class: 'muted gr-hint' }, 'Playback records 1 to 30 seconds of you, plays them back, and starts again.')),
      this.phase,
      this.audioError,
      this.audioSink);

    this.checklist = new Checklist(STEPS, () => actions.again());
    this.report = new ReportCard(() => actions.refreshReport());
    this.content = [
      this.banner,
      this.lost,
      h('div', { class: 'grid gr-grid' },
        h('div', { class: 'gr-main' }, camera, audio),
        h('div', { class: 'gr-side' }, this.checklist.element, this.report.element)),
    ];
    this.showPhase(null);
  }

  status(text: string, tone: Tone = 'info', action?: ButtonAction): void {
    this.bannerText.textContent = text;
    this.banner.dataset.tone = tone;
    this.bannerButton.hidden = !action;
    if (action) {
      this.bannerButton.textContent = action.label;
      this.bannerButton.onclick = action.onClick;
    }
  }

  connectionLost(text: string | null): void {
    this.lost.hidden = text === null;
    this.banner.hidden = text !== null; // the alert says it all
    this.lostText.textContent = text ?? '';
    if (text !== null) this.lost.querySelector('button')?.focus();
  }

  /** The phase in words; null: no bot to ask. */
  showPhase(phase: Phase | null, seconds?: number, waiting = 'Waiting for the echo bot…'): void {
    clear(this.phase);
    this.phase.dataset.phase = phase ?? '';
    if (phase === null) {
      this.phase.append(h('span', { class: 'badge' }, 'Not yet'), ' ', waiting);
      return;
    }
    const [word, text] = PHASES[phase];
    const tone = phase === 'recording' ? 'badge rec' : phase === 'playing' ? 'badge ok' : 'badge';
    const detail = phase === 'recording' && seconds ? text.replace('recorded', `recorded for ${seconds} s`) : text;
    this.phase.append(h('span', { class: tone }, word), ' ', detail);
  }

  mode(): Mode {
    return this.modePlayback.checked ? 'playback' : 'live';
  }

  showMode(mode: Mode, seconds: number): void {
    this.modeLive.checked = mode === 'live';
    this.modePlayback.checked = mode === 'playback';
    if (document.activeElement !== this.seconds) this.seconds.value = String(Math.round(seconds));
  }

  /** The controls that talk to the bot: usable only while it is there. */
  controls(enabled: boolean, blurAvailable = true): void {
    for (const input of [this.modeLive, this.modePlayback, this.seconds, this.previewToggle]) input.disabled = !enabled;
    this.blurToggle.disabled = !enabled || !blurAvailable;
    this.report.refresh.disabled = !enabled;
  }

  /** What went wrong with the camera or microphone, and how to fix it (null: hide). */
  deviceProblem(paragraphs: string[] | null): void {
    this.deviceHelp.hidden = paragraphs === null;
    clear(this.deviceHelpText);
    const [title, ...rest] = paragraphs ?? [];
    if (title) this.deviceHelpText.appendChild(h('p', {}, h('strong', {}, title)));
    for (const text of rest) this.deviceHelpText.appendChild(h('p', {}, text));
  }

  /** No preview (switched off, or no bot to send it): back to the hint that turns it on. */
  previewOff(): void {
    this.showVideo(this.previewTile, null, PREVIEW_OFF);
    this.previewTile.dataset.state = 'off';
  }

  showVideo(tile: HTMLElement, video: HTMLVideoElement | null, empty: string): void {
    const caption = tile.querySelector('figcaption');
    for (const child of [...tile.children]) if (child !== caption) child.remove();
    tile.insertBefore(video ?? h('div', { class: 'gr-placeholder' }, empty), caption);
    tile.classList.toggle('has-video', video !== null);
  }
}
