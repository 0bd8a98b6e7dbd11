/**
 * The websocket transport: connect, parse frames, ping every 25 s, detect a
 * stale socket, and reconnect with exponential backoff + jitter. Knows the
 * refusal close codes (4403: never retry, 4429: retry later).
 */
import {
  BACKOFF_BASE_MS,
  CLOSE_FORBIDDEN,
  CLOSE_RATE_LIMITED,
  PING_INTERVAL_MS,
  RATE_LIMIT_MIN_MS,
  backoffDelay,
  parseFrame,
  type ClientFrame,
  type ServerFrame,
} from './protocol';

export type ConnectionState =
  | 'idle' // not started, or stopped on purpose
  | 'connecting' // socket opening (first time or after a backoff)
  | 'online' // socket open
  | 'offline' // dropped; a reconnect is scheduled
  | 'rate_limited' // refused with 4429; a (longer) reconnect is scheduled
  | 'unavailable'; // refused with 4403: bad key or origin; we do not retry

/** Minimal constructor shape so tests can pass a fake. */
export interface SocketLike {
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type SocketFactory = (url: string) => SocketLike;

export interface ConnectionOptions {
  /** Called for every attempt, so resume parameters are always current. */
  url: () => string;
  onFrame: (frame: ServerFrame) => void;
  onState: (state: ConnectionState, info: { closeCode?: number; delayMs?: number }) => void;
  createSocket?: SocketFactory;
  random?: () => number;
  now?: () => number;
  /** Close and reconnect if nothing (not even a pong) arrived for this long. */
  staleAfterMs?: number;
}

const OPEN = 1;

export class Connection {
  state: ConnectionState = 'idle';
  /** Increments with every socket; lets callers know "sent on this socket". */
  generation = 0;
  /** Consecutive failed attempts; reset once the server says ready. */
  attempt = 0;

  private ws: SocketLike | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private lastFrameAt = 0;
  private readonly createSocket: SocketFactory;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly staleAfterMs: number;
  private readonly onBrowserOnline = () => {
    if (this.state === 'offline') this.reconnectNow();
  };

  constructor(private readonly opts: ConnectionOptions) {
    this.createSocket = opts.createSocket ?? ((url) => new WebSocket(url) as unknown as SocketLike);
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? (() => Date.now());
    this.staleAfterMs = opts.staleAfterMs ?? PING_INTERVAL_MS * 2 + 10_000;
  }

  get isOpen(): boolean {
    return this.state === 'online' && !!this.ws && this.ws.readyState === OPEN;
  }

  start(): void {
    if (this.state !== 'idle') return;
    if (typeof window !== 'undefined') window.addEventListener('online', this.onBrowserOnline);
    this.open();
  }

  /** Stop for good (element removed from the page). */
  stop(): void {
    if (typeof window !== 'undefined') window.removeEventListener('online', this.onBrowserOnline);
    this.clearTimers();
    this.dropSocket(1000, 'client closing');
    this.setState('idle', {});
  }

  /** Skip the remaining backoff (browser came back online, user pressed send). */
  reconnectNow(): void {
    if (this.state !== 'offline' && this.state !== 'rate_limited') return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.open();
  }

  /** Send a frame if the socket is open. Returns false if it was not sent. */
  send(frame: ClientFrame): boolean {
    if (!this.isOpen || !this.ws) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  private open(): void {
    this.clearTimers();
    this.dropSocket();
    this.setState('connecting', {});
    let ws: SocketLike;
    try {
      ws = this.createSocket(this.opts.url());
    } catch {
      // e.g. SyntaxError for a malformed URL, or CSP blocking ws: — treat like a drop.
      this.scheduleReconnect(1006);
      return;
    }
    this.ws = ws;
    this.generation++;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.lastFrameAt = this.now();
      this.setState('online', {});
      this.pingTimer = setInterval(() => this.tick(), PING_INTERVAL_MS);
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.lastFrameAt = this.now();
      const frame = parseFrame(ev.data);
      if (!frame) return;
      if (frame.type === 'ready') this.attempt = 0;
      this.opts.onFrame(frame);
    };
    ws.onerror = () => {
      /* a close event always follows; handled there */
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.clearTimers();
      this.handleClose(ev?.code ?? 1006);
    };
  }

  private handleClose(code: number): void {
    if (code === CLOSE_FORBIDDEN) {
      this.setState('unavailable', { closeCode: code });
      return;
    }
    this.scheduleReconnect(code);
  }

  private scheduleReconnect(code: number): void {
    const limited = code === CLOSE_RATE_LIMITED;
    const delayMs = backoffDelay(this.attempt, this.random, limited ? RATE_LIMIT_MIN_MS : BACKOFF_BASE_MS);
    this.attempt++;
    this.setState(limited ? 'rate_limited' : 'offline', { closeCode: code, delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.open();
    }, delayMs);
  }

  private tick(): void {
    if (this.now() - this.lastFrameAt > this.staleAfterMs) {
      // Half-open TCP connection (laptop sleep, NAT timeout): give up on it.
      this.clearTimers();
      this.dropSocket(4000, 'stale');
      this.scheduleReconnect(1006);
      return;
    }
    this.send({ type: 'ping' });
  }

  private dropSocket(code?: number, reason?: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close(code, reason);
    } catch {
      /* ignore */
    }
  }

  private clearTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  private setState(state: ConnectionState, info: { closeCode?: number; delayMs?: number }): void {
    this.state = state;
    this.opts.onState(state, info);
  }
}
