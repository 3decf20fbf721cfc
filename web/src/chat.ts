// The meeting chat panel; its parts are under ./chat/ (protocol, messages, view, reactions,
// outbox, composer, panel).
export { ChatPanel } from './chat/panel';
