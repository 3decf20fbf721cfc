// The meeting's video tiles: one per person (bots are not people, and get none), their
// camera when they publish one, their initials when they do not, a muted-microphone mark,
// and an outline while they speak. Remote audio is played here too.

import {
  Participant,
  Room,
  RoomEvent,
  Track,
  type RemoteTrack,
  type RemoteTrackPublication,
} from 'livekit-client';

import { clear, h } from './ui';

export function isBot(participant: Participant): boolean {
  return participant.isAgent || participant.attributes['lk.agent.name'] !== undefined;
}

export function displayName(participant: Participant): string {
  return participant.name || participant.identity;
}

function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return (parts.length > 1 ? parts[0]![0]! + parts[1]![0]! : name.slice(0, 2)).toUpperCase();
}

export class Tiles {
  readonly element: HTMLElement;
  private readonly audio: HTMLElement;
  private readonly tiles = new Map<string, HTMLElement>();

  constructor(private readonly room: Room) {
    this.element = h('section', { class: 'tiles', 'aria-label': 'Participants’ video', 'data-testid': 'tiles' });
    this.audio = h('div', { hidden: true });
    this.element.appendChild(this.audio);
    const render = () => this.render();
    room
      .on(RoomEvent.ParticipantConnected, render)
      .on(RoomEvent.ParticipantDisconnected, render)
      .on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
        if (track.kind === Track.Kind.Audio) this.audio.appendChild(track.attach());
        render();
      })
      .on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => {
        track.detach().forEach((el) => el.remove());
        render();
      })
      .on(RoomEvent.LocalTrackPublished, render)
      .on(RoomEvent.LocalTrackUnpublished, render)
      .on(RoomEvent.TrackMuted, render)
      .on(RoomEvent.TrackUnmuted, render)
      .on(RoomEvent.ParticipantNameChanged, render)
      .on(RoomEvent.ParticipantAttributesChanged, render)
      .on(RoomEvent.ActiveSpeakersChanged, () => this.markSpeakers());
    for (const participant of room.remoteParticipants.values()) {
      for (const publication of participant.trackPublications.values()) {
        const track = (publication as RemoteTrackPublication).track;
        if (track?.kind === Track.Kind.Audio) this.audio.appendChild(track.attach());
      }
    }
    this.render();
  }

  /** Everyone but the bots: this person first. */
  people(): Participant[] {
    const others = [...this.room.remoteParticipants.values()].filter((p) => !isBot(p));
    return [this.room.localParticipant, ...others];
  }

  render(): void {
    const seen = new Set<string>();
    for (const participant of this.people()) {
      seen.add(participant.identity);
      let tile = this.tiles.get(participant.identity);
      if (!tile) {
        const local = participant === this.room.localParticipant;
        tile = h('figure', { class: 'tile', 'data-identity': participant.identity, 'data-local': local });
        this.tiles.set(participant.identity, tile);
        this.element.appendChild(tile);
      }
      this.fill(tile, participant);
    }
    for (const [identity, tile] of this.tiles) {
      if (!seen.has(identity)) {
        tile.remove();
        this.tiles.delete(identity);
      }
    }
    this.element.dataset.count = String(this.tiles.size);
  }

  private fill(tile: HTMLElement, participant: Participant): void {
    const camera = participant.getTrackPublication(Track.Source.Camera);
    const track = camera && !camera.isMuted ? camera.videoTrack : undefined;
    const name = displayName(participant) + (participant === this.room.localParticipant ? ' (you)' : '');
    const micMuted = !participant.isMicrophoneEnabled;
    let video = tile.querySelector('video');
    if (track) {
      if (!video || video.dataset.sid !== track.sid) {
        clear(tile);
        video = track.attach() as HTMLVideoElement;
        video.muted = true;
        video.dataset.sid = track.sid ?? '';
        video.setAttribute('aria-label', `${displayName(participant)}’s camera`);
        tile.appendChild(video);
      }
    } else if (video || !tile.querySelector('.avatar')) {
      clear(tile);
      tile.appendChild(h('div', { class: 'avatar', 'aria-hidden': 'true' }, initials(displayName(participant))));
    }
    let caption = tile.querySelector('figcaption');
    if (!caption) {
      caption = h('figcaption', {});
      tile.appendChild(caption);
    }
    caption.textContent = micMuted ? `${name} · muted` : name;
    tile.classList.toggle('has-video', Boolean(track));
  }

  private markSpeakers(): void {
    const speaking = new Set(this.room.activeSpeakers.map((p) => p.identity));
    for (const [identity, tile] of this.tiles) tile.classList.toggle('speaking', speaking.has(identity));
  }
}
