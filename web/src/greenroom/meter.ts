// Level meters: a labelled bar (role="meter", 0-100 for -60..0 dBFS), and the level of a
// media track measured in the page with WebAudio.

import { h } from '../ui';

export const FLOOR_DBFS = -60;
const CLIP_DBFS = -3;

/** -60..0 dBFS as 0..100 (silence, or nothing, is 0). */
export function percentOf(dbfs: number | null): number {
  if (dbfs === null || !Number.isFinite(dbfs)) return 0;
  return Math.max(0, Math.min(100, ((dbfs - FLOOR_DBFS) / -FLOOR_DBFS) * 100));
}

export class Meter {
  readonly element: HTMLElement;
  private readonly bar: HTMLElement;
  private readonly fill: HTMLElement;
  private readonly readout: HTMLElement;

  constructor(id: string, label: string, testId: string, hint: string) {
    this.fill = h('span');
    this.bar = h('div', {
      class: 'meter gr-meter',
      role: 'meter',
      id,
      'aria-labelledby': `${id}-label`,
      'aria-describedby': `${id}-hint`,
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': 0,
      'aria-valuetext': 'silent',
      'data-testid': testId,
      'data-dbfs': '',
    }, this.fill);
    this.readout = h('span', { class: 'gr-readout', 'aria-hidden': 'true' }, '—');
    this.element = h('div', { class: 'gr-meter-row' },
      h('div', { class: 'gr-meter-head' },
        h('span', { id: `${id}-label`, class: 'gr-meter-label' }, label),
        this.readout),
      this.bar,
      h('p', { id: `${id}-hint`, class: 'muted gr-hint' }, hint));
  }

  set(dbfs: number | null): void {
    const percent = Math.round(percentOf(dbfs));
    const loud = dbfs !== null && Number.isFinite(dbfs);
    this.fill.style.width = `${percent}%`;
    this.fill.classList.toggle('clip', loud && dbfs >= CLIP_DBFS);
    this.bar.setAttribute('aria-valuenow', String(percent));
    const text = loud && percent > 0 ? `${Math.round(dbfs)} dBFS` : 'silent';
    this.bar.setAttribute('aria-valuetext', text);
    this.bar.dataset.dbfs = loud ? dbfs.toFixed(1) : '';
    this.readout.textContent = text;
  }

  /** Nothing to show (no bot, no track): the bar is empty and says why. */
  idle(why: string): void {
    this.set(null);
    this.bar.setAttribute('aria-valuetext', why);
    this.readout.textContent = why;
  }
}

let context: AudioContext | null = null;

/** One AudioContext for the page. It may start suspended until the person clicks. */
export function audioContext(): AudioContext {
  context ??= new AudioContext();
  return context;
}

/** The level of one audio track, read on demand. Chrome feeds a remote WebRTC track into
 * WebAudio only while the track also plays in a media element: attach it first. */
export class TrackLevel {
  private readonly source: MediaStreamAudioSourceNode;
  private readonly analyser: AnalyserNode;
  private readonly samples: Float32Array<ArrayBuffer>;

  constructor(readonly track: MediaStreamTrack) {
    const ctx = audioContext();
    this.source = ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 2048; // about 43 ms at 48 kHz: a meter's window
    this.samples = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
  }

  /** RMS of the latest window, in dBFS; null for digital silence. */
  dbfs(): number | null {
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const sample of this.samples) sum += sample * sample;
    const rms = Math.sqrt(sum / this.samples.length);
    return rms > 0 ? 20 * Math.log10(rms) : null;
  }

  close(): void {
    this.source.disconnect();
    this.analyser.disconnect();
  }
}
