// The camera and microphone checks. Both are asked for at once (one permission prompt), and
// each alone when that fails, so that the checks can say which of the two is the problem and
// what to do about that one; a blocked device gets the steps to unblock it.

import {
  MediaDeviceFailure,
  Track,
  VideoPresets,
  createLocalAudioTrack,
  createLocalTracks,
  createLocalVideoTrack,
  type AudioCaptureOptions,
  type LocalAudioTrack,
  type LocalTrack,
  type LocalVideoTrack,
  type VideoCaptureOptions,
} from 'livekit-client';

import { errorText } from '../errors';
import { capital } from './protocol';
import type { GreenRoomView } from './view';

const AUDIO: AudioCaptureOptions = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
const VIDEO: VideoCaptureOptions = { resolution: VideoPresets.h540.resolution };

export interface Devices {
  audio: LocalAudioTrack | null;
  video: LocalVideoTrack | null;
}

/** Why a camera or microphone could not be opened, and what to do about it. */
function deviceProblem(kind: 'camera' | 'microphone', err: unknown): { detail: string; fix: string; denied: boolean } {
  const failure = MediaDeviceFailure.getFailure(err);
  switch (failure) {
    case MediaDeviceFailure.PermissionDenied:
      return {
        detail: `The browser blocked the ${kind} for this page.`,
        fix: `Allow the ${kind} for this page (how: see the Camera panel), then run the checks again.`,
        denied: true,
      };
    case MediaDeviceFailure.NotFound:
      return {
        detail: `No ${kind} was found.`,
        fix: `Connect a ${kind} (or switch it on), then run the checks again.`,
        denied: false,
      };
    case MediaDeviceFailure.DeviceInUse:
      return {
        detail: `The ${kind} is in use by another program, or could not start.`,
        fix: `Close other programs that use it (another meeting, a ${kind} app), then run the checks again.`,
        denied: false,
      };
    default:
      return {
        detail: `The ${kind} could not be opened: ${errorText(err)}.`,
        fix: 'Run the checks again; if it keeps failing, restart the browser.',
        denied: false,
      };
  }
}

/** Opens both and shows the camera. `stale`: a newer run of the checks has begun, so the
 * tracks are stopped and nothing is shown. */
export async function openDevices(view: GreenRoomView, stale: () => boolean): Promise<Devices> {
  const checks = view.checklist;
  const none: Devices = { audio: null, video: null };
  checks.set('camera', 'running');
  checks.set('microphone', 'running');
  if (!navigator.mediaDevices?.getUserMedia) {
    const fix = 'Open this page over https:// in a current browser (Chrome, Edge, Firefox or Safari).';
    checks.set('camera', 'fail', 'This browser offers no camera to this page.', fix);
    checks.set('microphone', 'fail', 'This browser offers no microphone to this page.', fix);
    view.deviceProblem(['This browser offers no camera or microphone to this page.', fix]);
    return none;
  }
  let audioError: unknown = null;
  let videoError: unknown = null;
  let tracks: LocalTrack[] = [];
  try {
    tracks = await createLocalTracks({ audio: AUDIO, video: VIDEO });
  } catch {
    // One of the two may still work: ask for each alone, to say which failed.
    const [audio, video] = await Promise.allSettled([createLocalAudioTrack(AUDIO), createLocalVideoTrack(VIDEO)]);
    if (audio.status === 'fulfilled') tracks.push(audio.value);
    else audioError = audio.reason;
    if (video.status === 'fulfilled') tracks.push(video.value);
    else videoError = video.reason;
  }
  if (stale()) {
    for (const track of tracks) track.stop();
    return none;
  }
  const audio = (tracks.find((t) => t.kind === Track.Kind.Audio) as LocalAudioTrack | undefined) ?? null;
  const video = (tracks.find((t) => t.kind === Track.Kind.Video) as LocalVideoTrack | undefined) ?? null;
  const denied: string[] = [];
  if (video) {
    const settings = video.mediaStreamTrack.getSettings();
    const size = settings.width && settings.height ? ` at ${settings.width}×${settings.height}` : '';
    checks.set('camera', 'pass', `${video.mediaStreamTrack.label || 'Camera'}${size}.`);
    const element = video.attach() as HTMLVideoElement;
    element.muted = true;
    element.setAttribute('aria-label', 'Your camera, mirrored');
    view.showVideo(view.selfTile, element, '');
  } else {
    const problem = deviceProblem('camera', videoError);
    checks.set('camera', 'fail', problem.detail, problem.fix);
    if (problem.denied) denied.push('camera');
    view.showVideo(view.selfTile, null, `No camera. ${problem.detail}`);
  }
  if (audio) {
    checks.set('microphone', 'pass', `${audio.mediaStreamTrack.label || 'Microphone'}.`);
  } else {
    const problem = deviceProblem('microphone', audioError);
    checks.set('microphone', 'fail', problem.detail, problem.fix);
    if (problem.denied) denied.push('microphone');
  }
  if (denied.length) {
    const what = denied.join(' and ');
    view.deviceProblem([
      `${capital(what)} ${denied.length > 1 ? 'are' : 'is'} blocked for this page.`,
      `To allow ${denied.length > 1 ? 'them' : 'it'}: click the camera icon or the padlock at the left of the address bar, set ${denied.map(capital).join(' and ')} to “Allow”, then press “Try again”.`,
      'On a phone: open the browser’s settings, then Site settings (or Privacy), allow this site to use them, and come back.',
    ]);
  } else if (!audio && !video) {
    view.deviceProblem(['Neither a camera nor a microphone could be opened: see the checks for why.']);
  }
  return { audio, video };
}

/** Whether a device was unplugged or stopped by the system since it was opened. */
export function devicesEnded(devices: Devices): boolean {
  return [devices.audio, devices.video].some((track) => track && track.mediaStreamTrack.readyState === 'ended');
}

/** Stops both and puts the camera's placeholder back. */
export function closeDevices(devices: Devices, view: GreenRoomView): void {
  for (const track of [devices.audio, devices.video]) {
    track?.detach();
    track?.stop();
  }
  view.showVideo(view.selfTile, null, 'Your camera appears here.');
}
