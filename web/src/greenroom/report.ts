// The bot's device and network report as a card a person can read: the verdict, why, and
// what the microphone, camera and network look like.

import { append, clear, h } from '../ui';
import {
  capital, type CameraReport, type MicReport, type NetworkFigures, type Report, type Spread, type Verdict,
} from './protocol';

const VERDICTS: Record<Verdict, [string, string, string]> = {
  good: ['Good', 'ok', 'You are ready for a meeting.'],
  fair: ['Fair', 'warn', 'A meeting will work, though not at its best.'],
  poor: ['Poor', 'bad', 'Others may not hear or see you well: see why below.'],
};

const MIC: Record<string, string> = {
  ok: 'Working',
  silent: 'Silent: is it muted, or turned down?',
  no_audio: 'No sound arrives from it yet',
  clipping: 'Too loud (clipping): lower its input volume',
};

const CAMERA: Record<string, string> = {
  ok: 'Working',
  black: 'The picture is black: is the lens covered or the camera off?',
  frozen: 'The picture is frozen: is another app using the camera?',
  no_video: 'No video arrives from it yet',
};

/** `value` rounded for reading: never "-0". */
function n(value: number, digits = 0): string {
  const text = value.toFixed(digits);
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

function spread(value: Spread | undefined, unit: string): string | null {
  if (!value || !value.samples || value.avg === null) return null;
  const low = value.min ?? value.avg;
  const high = value.max ?? value.avg;
  const range = low.toFixed(0) === high.toFixed(0) ? '' : ` (${low.toFixed(0)}–${high.toFixed(0)})`;
  return `${value.avg.toFixed(0)} ${unit} on average${range}`;
}

function network(figures: NetworkFigures | null): string {
  if (!figures) return 'Not reported';
  const parts: string[] = [];
  const missing: string[] = [];
  const add = (value: number | null, name: string, text: (v: number) => string): void => {
    if (value === null || value === undefined) missing.push(name);
    else parts.push(text(value));
  };
  add(figures.rtt_ms, 'round trip', (v) => `round trip ${n(v)} ms`);
  add(figures.jitter_ms, 'jitter', (v) => `jitter ${n(v)} ms`);
  add(figures.loss_pct, 'loss', (v) => `${n(v, 1)} % lost`);
  add(figures.bitrate_kbps, 'bitrate', (v) => `${n(v)} kbps received`);
  if (missing.length === 4) return 'Still measuring…';
  const text = capital(parts.join(' · '));
  return missing.length ? `${text} (${missing.join(', ')}: still measuring)` : text;
}

/** A status word (`no_audio`) in words: the known ones explained, others spelt out. */
function statusText(status: string | null, known: Record<string, string>): string {
  if (status === null) return 'Not reported';
  return known[status] ?? capital(status.replace(/_/g, ' '));
}

function micText(mic: MicReport | null): string {
  if (!mic) return 'Not reported';
  const peak = mic.peak_dbfs !== null ? `, peak ${n(mic.peak_dbfs)} dBFS` : '';
  const level = mic.rms_dbfs !== null ? ` · ${n(mic.rms_dbfs)} dBFS average${peak}` : '';
  return statusText(mic.status, MIC) + level;
}

function cameraText(cam: CameraReport | null): string {
  if (!cam) return 'Not reported';
  const fps = cam.fps !== null && cam.fps > 0 ? `, ${n(cam.fps)} fps` : '';
  const size = cam.status !== 'no_video' && cam.width && cam.height ? ` · received at ${cam.width}×${cam.height}${fps}` : '';
  return statusText(cam.status, CAMERA) + size;
}

export class ReportCard {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly updated: HTMLElement;
  readonly refresh: HTMLButtonElement;
  readonly error: HTMLElement;

  constructor(onRefresh: () => void) {
    this.body = h('div', { class: 'gr-report', 'data-testid': 'report' },
      h('p', { class: 'muted' }, 'The report comes once the echo bot has listened for a few seconds.'));
    this.updated = h('p', { class: 'muted gr-updated' });
    this.refresh = h('button', { type: 'button', class: 'secondary', onclick: onRefresh, disabled: true }, 'Refresh the report');
    this.error = h('p', { class: 'gr-error', role: 'alert' });
    this.element = h('section', { class: 'card', 'aria-labelledby': 'gr-report-title' },
      h('h2', { id: 'gr-report-title' }, 'Report'),
      this.body,
      this.updated,
      this.error,
      h('p', {}, this.refresh));
  }

  /** `early`: taken in the check's first seconds, before it has settled. What the report
   * lacks (protocol.ts `readReport` leaves out what is malformed) reads "Not reported". */
  show(report: Report, early = false): void {
    const [word, tone, advice] = report.verdict ? VERDICTS[report.verdict] : ['Unknown', 'warn', 'The report did not say.'];
    const mic = report.microphone;
    const cam = report.camera;
    const summary = report.network_summary;
    const overall = [spread(summary.rtt_ms, 'ms round trip'), spread(summary.bitrate_kbps, 'kbps')].filter(Boolean);
    clear(this.body);
    append(this.body,
      h('p', { class: 'gr-verdict' },
        'Verdict: ',
        h('span', { class: `badge ${tone}`, 'data-testid': 'report-verdict' }, word),
        ' ', h('span', {}, advice)),
      report.reasons.length
        ? h('div', {}, h('p', { class: 'gr-why' }, 'Why:'),
          h('ul', { class: 'gr-reasons' }, ...report.reasons.map((reason) => h('li', {}, capital(reason)))))
        : null,
      h('dl', { class: 'gr-facts' },
        h('dt', {}, 'Microphone'), h('dd', { 'data-status': mic?.status ?? '' }, micText(mic)),
        h('dt', {}, 'Camera'), h('dd', { 'data-status': cam?.status ?? '' }, cameraText(cam)),
        h('dt', {}, 'Network'), h('dd', {}, network(report.network),
          overall.length ? h('span', { class: 'muted gr-overall' }, `Since you came in: ${overall.join('; ')}.`) : null)),
    );
    this.updated.textContent = early
      ? `First reading, at ${new Date().toLocaleTimeString()}: it settles within a few seconds.`
      : `Updated at ${new Date().toLocaleTimeString()}.`;
    this.error.textContent = '';
  }
}
