// /app/meeting/{id}: a guest's view of a meeting.

import { meetingIdFromPath } from '../api';
import { MeetingPage } from '../meeting_view';

void new MeetingPage(meetingIdFromPath(), { title: 'Meeting', panels: [] }).run();
