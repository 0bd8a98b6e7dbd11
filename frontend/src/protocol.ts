/**
 * Wire types of the chat websocket protocol (see docs/websocket.md) and small
 * pure helpers: URL building, frame parsing, reconnect backoff.
 */

export type Role = 'customer' | 'assistant' | 'agent' | 'system';
export type ConversationStatus = 'open' | 'waiting_for_human' | 'with_agent' | 'resolved';

export interface Citation {
  n: number;
  title: string;
  url?: string | null;
  snippet?: string;
}

/** An action that changes data, waiting for the customer's confirm frame (apps/actions). */
export interface MessageAction {
  call_id: string;
  title: string;
  /** pending until answered; then the call's status (succeeded, failed, declined, …). */
  state: string;
}

export interface WireMessage {
  id: number;
  role: Role;
  content: string;
  created_at?: string;
  citations?: Citation[];
  client_id?: string | null;
  status?: 'complete' | 'failed' | 'streaming';
  /** Not in the base protocol; accepted if the server includes it. */
  conversation_id?: string | null;
  action?: MessageAction | null;
}

/** How the widget key wants the widget to look, greet and speak (sent with `ready`). */
export interface WidgetSettings {
  accent_color: string;
  accent_text_color: string;
  launcher_position: 'left' | 'right';
  launcher_label: string;
  assistant_name: string;
  avatar_url: string | null;
  greeting: string;
  suggested_questions: string[];
  languages: string[];
  default_language: string;
  hidden_paths: string[];
}

/** Office hours of the team the conversation goes to (absent: no office hours). */
export interface TeamState {
  available: boolean;
  back_at: string | null;
}

export type ServerFrame =
  | {
      type: 'ready';
      conversation_id: string | null;
      status: ConversationStatus;
      messages: WireMessage[];
      widget?: WidgetSettings;
      team?: TeamState;
    }
  | { type: 'message'; message: WireMessage; conversation_id?: string | null }
  | { type: 'token'; message_id: number; delta: string }
  | { type: 'message_done'; message: WireMessage }
  | { type: 'typing'; role: 'assistant' | 'agent'; active: boolean; name?: string }
  | { type: 'handoff'; status: 'waiting_for_human'; reason?: string }
  | { type: 'agent_joined'; agent: { name?: string } }
  | { type: 'status'; status: ConversationStatus; conversation_id?: string | null }
  | { type: 'csat_request' }
  | { type: 'feedback_ack'; message_id: number | null }
  | { type: 'action_status'; call_id: string; status: string; duplicate?: boolean }
  | { type: 'error'; code: string; message?: string; client_id?: string | null }
  | { type: 'pong' };

export type ClientFrame =
  | { type: 'message'; client_id: string; text: string }
  | { type: 'typing'; active: boolean }
  | { type: 'handoff' }
  | { type: 'feedback'; message_id: number; rating: 'up' | 'down' }
  | { type: 'csat'; score: number; comment: string }
  | { type: 'confirm'; call_id: string; accept: boolean }
  | { type: 'ping' };

/** Close codes the server uses to refuse a connection. */
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_RATE_LIMITED = 4429;

export const PING_INTERVAL_MS = 25_000;
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_MAX_MS = 30_000;
/** After a 4429 the first retry waits at least this long. */
export const RATE_LIMIT_MIN_MS = 5_000;

export interface SocketUrlParams {
  server: string; // http(s) origin, e.g. https://support.example.com
  key: string;
  conversationId?: string | null;
  since?: number | null;
  token?: string | null;
  lang?: string | null;
  /** The page the widget is on; the tenant's routing rules may match on it. */
  page?: string | null;
}

/** Turn an http(s) server origin into the chat websocket URL with its query. */
export function buildSocketUrl(p: SocketUrlParams): string {
  const url = new URL('/ws/chat/', p.server);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const q = url.searchParams;
  q.set('key', p.key);
  if (p.conversationId) {
    q.set('conversation', p.conversationId);
    if (p.since != null && p.since > 0) q.set('since', String(p.since));
  }
  if (p.token) q.set('token', p.token);
  if (p.lang) q.set('lang', p.lang);
  if (p.page) q.set('page', p.page.slice(0, 2000));
  return url.toString();
}

const SERVER_TYPES = new Set([
  'ready', 'message', 'token', 'message_done', 'typing', 'handoff', 'agent_joined',
  'status', 'csat_request', 'feedback_ack', 'error', 'pong', 'action_status',
]);

/** Parse one incoming frame; returns null for junk or unknown types. */
export function parseFrame(data: unknown): ServerFrame | null {
  if (typeof data !== 'string') return null;
  let obj: unknown;
  try {
    obj = JSON.parse(data);
  } catch {
    return null;
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return null;
  const type = (obj as { type?: unknown }).type;
  if (typeof type !== 'string' || !SERVER_TYPES.has(type)) return null;
  return obj as ServerFrame;
}

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential from 1 s,
 * capped at 30 s, with ±20 % jitter so a server restart does not get every
 * widget back in the same second. Never below 1 s, never above 30 s.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random, minMs = BACKOFF_BASE_MS): number {
  const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, Math.min(attempt, 16)));
  const base = Math.max(exp, minMs);
  const jittered = base * (0.8 + 0.4 * random());
  return Math.round(Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_BASE_MS, jittered)));
}

/** Random id for optimistic customer messages (echoed back by the server). */
export function randomId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && c.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
