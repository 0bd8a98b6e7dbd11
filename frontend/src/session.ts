/**
 * ChatSession glues the transport (Connection) to the bookkeeping
 * (ConversationState): it builds the resume URL, re-sends unconfirmed
 * customer messages after every `ready`, queues control frames while offline,
 * throttles typing notifications and persists progress per widget key.
 */
import { cleanSettings } from './appearance';
import { Connection, type ConnectionState, type SocketFactory } from './connection';
import { buildSocketUrl, randomId, type ClientFrame, type ServerFrame } from './protocol';
import {
  ConversationState,
  loadPersisted,
  savePersisted,
  type ChatMessage,
  type Changes,
  type KeyValueStore,
} from './state';

export interface SessionConfig {
  server: string;
  widgetKey: string;
  userToken?: string | null;
  language?: string | null;
}

export interface SessionOptions {
  createSocket?: SocketFactory;
  store?: KeyValueStore | null;
  random?: () => number;
  now?: () => number;
  idGenerator?: () => string;
}

export interface SessionListener {
  onChange(changes: Changes): void;
  onConnection(state: ConnectionState, info: { closeCode?: number; delayMs?: number }): void;
}

/** Send a typing:true at most this often while the customer keeps typing. */
export const TYPING_THROTTLE_MS = 3_000;
/** Send typing:false after this long without a keystroke. */
export const TYPING_IDLE_MS = 5_000;

type ControlFrame = Exclude<ClientFrame, { type: 'message' } | { type: 'typing' } | { type: 'ping' }>;

export class ChatSession {
  readonly state = new ConversationState();
  readonly connection: Connection;
  /** Whether the current socket has received `ready` (only then we send). */
  private ready = false;
  private controlQueue: ControlFrame[] = [];
  private listeners = new Set<SessionListener>();
  private lastTypingSentAt = 0;
  private typingActive = false;
  private typingIdleTimer: ReturnType<typeof setTimeout> | null = null;
  /** After a reload we have no transcript, so the first connect asks for full history. */
  private haveTranscript = false;
  private readonly store: KeyValueStore | null;
  private readonly now: () => number;
  private readonly newId: () => string;

  constructor(
    private readonly config: SessionConfig,
    opts: SessionOptions = {},
  ) {
    this.store = opts.store ?? null;
    this.now = opts.now ?? (() => Date.now());
    this.newId = opts.idGenerator ?? randomId;
    const saved = loadPersisted(this.store, config.widgetKey);
    if (saved) this.state.restore(saved);
    this.connection = new Connection({
      url: () => this.socketUrl(),
      onFrame: (f) => this.handleFrame(f),
      onState: (s, info) => this.handleConnection(s, info),
      createSocket: opts.createSocket,
      random: opts.random,
      now: opts.now,
    });
  }

  subscribe(l: SessionListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get started(): boolean {
    return this.connection.state !== 'idle';
  }

  /** True when there is something to resume (so connecting early is worth it). */
  get hasConversation(): boolean {
    return !!this.state.conversationId || this.state.unconfirmed().length > 0;
  }

  start(): void {
    this.connection.start();
  }

  /** The language the next connection asks the server to answer in. */
  setLanguage(language: string): void {
    this.config.language = language;
  }

  stop(): void {
    this.connection.stop();
    this.ready = false;
    if (this.typingIdleTimer) clearTimeout(this.typingIdleTimer);
  }

  /** URL for the next attempt: resume from what we hold. */
  socketUrl(): string {
    const since = this.haveTranscript ? this.state.resumeSince() : 0;
    return buildSocketUrl({
      server: this.config.server,
      key: this.config.widgetKey,
      conversationId: this.state.conversationId,
      since: since > 0 ? since : null,
      token: this.config.userToken,
      lang: this.config.language,
      page: typeof location !== 'undefined' ? location.href : null,
    });
  }

  // --------------------------------------------------------------- user actions

  /** Show the text optimistically and send it now, or as soon as we are back. */
  sendText(text: string): ChatMessage | null {
    const trimmed = text.replace(/\s+$/, '');
    if (!trimmed.trim()) return null;
    const msg = this.state.addPending(this.newId(), trimmed);
    this.stopTyping();
    this.flushMessage(msg);
    this.persist();
    this.emit({ messages: true });
    if (!this.started) this.start();
    else this.connection.reconnectNow();
    return msg;
  }

  retry(clientId: string): void {
    const msg = this.state.markPending(clientId);
    if (!msg) return;
    this.flushMessage(msg);
    this.persist();
    this.emit({ messages: true });
    this.connection.reconnectNow();
  }

  /** Confirm (or decline) an action the assistant asked about; the server runs it once. */
  confirmAction(callId: string, accept: boolean): void {
    if (this.state.setActionState(callId, accept ? 'confirming' : 'declining')) this.emit({ messages: true });
    this.sendControl({ type: 'confirm', call_id: callId, accept });
  }

  requestHandoff(): void {
    this.sendControl({ type: 'handoff' });
  }

  sendFeedback(messageId: number, rating: 'up' | 'down'): void {
    if (this.state.setFeedback(messageId, rating)) this.emit({ messages: true });
    this.sendControl({ type: 'feedback', message_id: messageId, rating });
  }

  sendCsat(score: number, comment: string): void {
    const s = Math.round(score);
    if (!(s >= 1 && s <= 5)) return;
    this.state.csatSubmitted = true;
    this.state.csatRequested = false;
    this.sendControl({ type: 'csat', score: s, comment: comment.trim() });
    this.emit({ csat: true });
  }

  /** Call on every keystroke in the input; throttled to the wire. */
  notifyTyping(): void {
    const now = this.now();
    if (!this.typingActive || now - this.lastTypingSentAt >= TYPING_THROTTLE_MS) {
      if (this.sendNow({ type: 'typing', active: true })) {
        this.lastTypingSentAt = now;
        this.typingActive = true;
      }
    }
    if (this.typingIdleTimer) clearTimeout(this.typingIdleTimer);
    this.typingIdleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping(): void {
    if (this.typingIdleTimer) clearTimeout(this.typingIdleTimer);
    this.typingIdleTimer = null;
    if (this.typingActive) {
      this.typingActive = false;
      this.sendNow({ type: 'typing', active: false });
    }
  }

  // --------------------------------------------------------------- internals

  private sendNow(frame: ClientFrame): boolean {
    return this.ready && this.connection.send(frame);
  }

  private sendControl(frame: ControlFrame): void {
    if (!this.sendNow(frame)) this.controlQueue.push(frame);
  }

  private flushMessage(msg: ChatMessage): void {
    if (msg.state !== 'pending' || !msg.clientId) return;
    if (msg.sentGeneration === this.connection.generation && this.ready) return; // already on this socket
    if (this.sendNow({ type: 'message', client_id: msg.clientId, text: msg.content })) {
      msg.sentGeneration = this.connection.generation;
    }
  }

  private handleFrame(frame: ServerFrame): void {
    const changes = this.state.apply(frame);
    if (frame.type === 'ready') {
      const settings = cleanSettings(frame.widget);
      if (settings) changes.settings = settings;
      const team = frame.team;
      changes.team =
        team && typeof team.available === 'boolean'
          ? { available: team.available, back_at: typeof team.back_at === 'string' ? team.back_at : null }
          : null;
      this.ready = true;
      this.haveTranscript = true;
      // Replay has been merged: whatever is still pending never reached the
      // server (or its echo was lost) — send it again. The server de-duplicates
      // by client_id, we de-duplicate the echo by client_id too.
      for (const m of this.state.unconfirmed()) this.flushMessage(m);
      const queued = this.controlQueue;
      this.controlQueue = [];
      for (const f of queued) this.sendControl(f);
    }
    if (frame.type === 'error' && !frame.client_id && (frame.code === 'rate_limited' || frame.code === 'invalid')) {
      // The refusal does not say which message it was about: fail the ones in
      // flight on this socket so the customer can retry instead of waiting forever.
      for (const m of this.state.unconfirmed()) {
        if (m.clientId && m.sentGeneration === this.connection.generation && this.state.markFailed(m.clientId)) {
          changes.messages = true;
        }
      }
    }
    if (changes.messages || changes.conversation) this.persist();
    this.emit(changes);
  }

  private handleConnection(s: ConnectionState, info: { closeCode?: number; delayMs?: number }): void {
    if (s !== 'online') {
      this.ready = false;
      this.typingActive = false;
      if (s !== 'connecting' && this.state.markStreamsInterrupted()) {
        this.emit({ messages: true });
      }
    }
    for (const l of this.listeners) l.onConnection(s, info);
  }

  private persist(): void {
    savePersisted(this.store, this.config.widgetKey, this.state.toPersisted());
  }

  private emit(partial: Partial<Changes>): void {
    const changes: Changes = {
      messages: false,
      status: false,
      typing: false,
      csat: false,
      conversation: false,
      error: null,
      incoming: [],
      ...partial,
    };
    for (const l of this.listeners) l.onChange(changes);
  }
}
