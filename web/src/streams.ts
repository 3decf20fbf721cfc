// A room's text streams on one topic, for a panel that comes and goes with the room: the
// handler is registered at once, and the function returned lets it go again, quietly when the
// room has let go of its handlers already (a room that disconnected throws on unregister).

import type { Room, TextStreamHandler } from 'livekit-client';

export function handleTextStreams(room: Room, topic: string, handler: TextStreamHandler): () => void {
  room.registerTextStreamHandler(topic, handler);
  return () => {
    try {
      room.unregisterTextStreamHandler(topic);
    } catch {
      // the room already let go
    }
  };
}
