// The console is for hosts and co-hosts. Anyone else is told so before joining, because a
// join would knock on the waiting room, and is offered the guest page instead.

import { ApiError, call } from '../api';
import { HOME, showProblem } from '../ui';

/** True: go on and join. */
export async function hostGate(meetingId: string, main: HTMLElement): Promise<boolean> {
  try {
    await call('GET', `/api/v1/meetings/${encodeURIComponent(meetingId)}/waiting-room`);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      showNotHost(meetingId, main);
      return false;
    }
    return true; // anything else: the join says it better
  }
}

export function showNotHost(meetingId: string, into: HTMLElement): HTMLElement {
  const panel = showProblem(
    'This console is for hosts',
    'Only the meeting’s host and co-hosts can use the host console. You can join the meeting as a guest.',
    [{ label: 'Join as a guest', href: `/app/meeting/${encodeURIComponent(meetingId)}` }, HOME],
    into,
  );
  panel.dataset.testid = 'not-host';
  return panel;
}
