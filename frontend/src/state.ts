/**
 * Conversation bookkeeping, independent of the DOM and of the socket:
 * message list keyed by server id and client id, optimistic customer
 * messages, token streaming, replay de-duplication, resume position,
 * conversation status / typing / CSAT flags, and localStorage persistence.
 */
import type {
  Citation,
  ConversationStatus,
  MessageAction,
  Role,
  ServerFrame,
  TeamState,
  WidgetSettings,
  WireMessage,
} from './protocol';

export type MessageState =
  | 'pending' // customer message not yet echoed by the server
  | 'failed' // customer message refused, or assistant answer failed
  | 'streaming' // assistant tokens arriving
  | 'interrupted' // was streaming when the connection dropped and was not replayed
  | 'complete';

export interface ChatMessage {
  /** Stable key for rendering; never changes for the life of the message. */
  key: string;
  id: number | null;
  clientId: string | null;
  role: Role;
  content: string;
  citations: Citation[];
  createdAt: string | null;
  state: MessageState;
  feedback: 'up' | 'down' | null;
  /** An action waiting for the customer's confirmation (or its outcome). */
  action?: MessageAction | null;
  /** Bumped on every change so the view can skip untouched bubbles. */
  version: number;
  /** Creation order, used to order messages that have no server id yet. */
  seq: number;
  /** Connection generation on which a pending message was last sent. */
  sentGeneration: number;
}

export interface Changes {
  messages: boolean;
  status: boolean;
  typing: boolean;
  csat: boolean;
  conversation: boolean;
  error: { code: string; message: string } | null;
  /** Messages from assistant/agent/system that arrived live (not replayed). */
  incoming: ChatMessage[];
  /** The widget key's settings, when a `ready` frame brought them. */
  settings?: WidgetSettings;
  /** Whether the team is in, from a `ready` frame (null: no office hours to show). */
  team?: TeamState | null;
}

export interface PersistedState {
  conversationId: string | null;
  lastSeenId: number;
  outbox: { clientId: string; text: string; createdAt: string | null; failed?: boolean }[];
}

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

function noChanges(): Changes {
  return { messages: false, status: false, typing: false, csat: false, conversation: false, error: null, incoming: [] };
}

const FINAL: ReadonlySet<MessageState> = new Set(['complete', 'failed']);

export class ConversationState {
  conversationId: string | null = null;
  status: ConversationStatus = 'open';
  agentName: string | null = null;
  assistantTyping = false;
  agentTyping: { active: boolean; name: string | null } = { active: false, name: null };
  csatRequested = false;
  csatSubmitted = false;
  /** True once a ready frame was seen on some connection. */
  everReady = false;

  private list: ChatMessage[] = [];
  private byId = new Map<number, ChatMessage>();
  private byClient = new Map<string, ChatMessage>();
  private seq = 0;

  get messages(): readonly ChatMessage[] {
    return this.list;
  }

  getById(id: number): ChatMessage | undefined {
    return this.byId.get(id);
  }

  getByClientId(clientId: string): ChatMessage | undefined {
    return this.byClient.get(clientId);
  }

  /**
   * The `since` to resume from: the highest id we hold in final form, but
   * never at or past a message that is still streaming / was interrupted, so
   * that its final version is replayed to us.
   */
  resumeSince(): number {
    let maxFinal = 0;
    let minOpen = Infinity;
    for (const m of this.list) {
      if (m.id == null) continue;
      if (FINAL.has(m.state)) maxFinal = Math.max(maxFinal, m.id);
      else minOpen = Math.min(minOpen, m.id);
    }
    return minOpen === Infinity ? maxFinal : Math.min(maxFinal, minOpen - 1);
  }

  /** Customer messages the server has not confirmed yet (excluding failed ones). */
  unconfirmed(): ChatMessage[] {
    return this.list.filter((m) => m.state === 'pending');
  }

  // ---------------------------------------------------------------- local actions

  addPending(clientId: string, text: string, createdAt: string | null = new Date().toISOString()): ChatMessage {
    const msg = this.create({
      key: `c:${clientId}`,
      id: null,
      clientId,
      role: 'customer',
      content: text,
      citations: [],
      createdAt,
      state: 'pending',
    });
    this.byClient.set(clientId, msg);
    this.sort();
    return msg;
  }

  markFailed(clientId: string): boolean {
    const m = this.byClient.get(clientId);
    if (!m || m.id != null || m.state === 'failed') return false;
    m.state = 'failed';
    m.version++;
    return true;
  }

  /** Put a failed customer message back to pending (user pressed retry). */
  markPending(clientId: string): ChatMessage | null {
    const m = this.byClient.get(clientId);
    if (!m || m.id != null) return null;
    m.state = 'pending';
    m.sentGeneration = 0;
    m.version++;
    return m;
  }

  /** The confirm buttons of action `callId` give way to its state ('confirming', then the status). */
  setActionState(callId: string, state: string): boolean {
    const m = this.list.find((x) => x.action?.call_id === callId);
    if (!m || !m.action || m.action.state === state) return false;
    // An answer from the server ("unknown" for a stale button) never brings the buttons back.
    if (state === 'pending') return false;
    m.action = { ...m.action, state };
    m.version++;
    return true;
  }

  setFeedback(id: number, rating: 'up' | 'down' | null): boolean {
    const m = this.byId.get(id);
    if (!m || m.feedback === rating) return false;
    m.feedback = rating;
    m.version++;
    return true;
  }

  /**
   * Called when the connection drops: a bubble that was streaming can no
   * longer be trusted to complete on its own.
   */
  markStreamsInterrupted(): boolean {
    let changed = false;
    for (const m of this.list) {
      if (m.state === 'streaming') {
        m.state = 'interrupted';
        m.version++;
        changed = true;
      }
    }
    return changed;
  }

  // ---------------------------------------------------------------- server frames

  apply(frame: ServerFrame): Changes {
    const ch = noChanges();
    switch (frame.type) {
      case 'ready': {
        const newId = frame.conversation_id ?? null;
        if (this.conversationId && newId !== this.conversationId) {
          // The server started over (conversation expired / not ours): drop
          // what belonged to the old one but keep unsent customer text.
          this.resetConversation();
          ch.messages = true;
        }
        if (newId !== this.conversationId) ch.conversation = true;
        this.conversationId = newId;
        if (frame.status && frame.status !== this.status) {
          this.status = frame.status;
          ch.status = true;
        }
        for (const wire of frame.messages ?? []) {
          if (this.upsert(wire, false).changed) ch.messages = true;
        }
        if (this.assistantTyping || this.agentTyping.active) {
          this.assistantTyping = false;
          this.agentTyping = { active: false, name: null };
          ch.typing = true;
        }
        this.everReady = true;
        break;
      }
      case 'message':
      case 'message_done': {
        const cid = frame.type === 'message' ? frame.conversation_id ?? frame.message.conversation_id : frame.message.conversation_id;
        if (cid && cid !== this.conversationId) {
          this.conversationId = cid;
          ch.conversation = true;
        }
        const r = this.upsert(frame.message, frame.type === 'message_done');
        if (r.changed) ch.messages = true;
        if (r.created && r.msg.role !== 'customer') ch.incoming.push(r.msg);
        if (r.msg.role === 'assistant' && this.assistantTyping) {
          this.assistantTyping = false;
          ch.typing = true;
        }
        if (r.msg.role === 'agent' && this.agentTyping.active) {
          this.agentTyping = { active: false, name: this.agentTyping.name };
          ch.typing = true;
        }
        break;
      }
      case 'token': {
        const id = frame.message_id;
        const existing = this.byId.get(id);
        if (existing) {
          if (existing.state === 'complete' || existing.state === 'failed') break; // late token
          existing.content += frame.delta ?? '';
          existing.state = 'streaming';
          existing.version++;
        } else {
          const msg = this.create({
            key: `m:${id}`,
            id,
            clientId: null,
            role: 'assistant',
            content: frame.delta ?? '',
            citations: [],
            createdAt: null,
            state: 'streaming',
          });
          this.byId.set(id, msg);
          this.sort();
          ch.incoming.push(msg);
        }
        ch.messages = true;
        if (this.assistantTyping) {
          this.assistantTyping = false;
          ch.typing = true;
        }
        break;
      }
      case 'typing': {
        if (frame.role === 'agent') {
          this.agentTyping = { active: !!frame.active, name: frame.name || this.agentTyping.name };
        } else {
          this.assistantTyping = !!frame.active;
        }
        ch.typing = true;
        break;
      }
      case 'handoff':
        ch.status = this.setStatus(frame.status || 'waiting_for_human');
        break;
      case 'agent_joined':
        this.agentName = frame.agent?.name || null;
        this.setStatus('with_agent');
        ch.status = true;
        break;
      case 'status':
        if (frame.conversation_id && frame.conversation_id !== this.conversationId) {
          this.conversationId = frame.conversation_id;
          ch.conversation = true;
        }
        ch.status = this.setStatus(frame.status);
        if (frame.status === 'resolved' && (this.assistantTyping || this.agentTyping.active)) {
          this.assistantTyping = false;
          this.agentTyping = { active: false, name: null };
          ch.typing = true;
        }
        break;
      case 'csat_request':
        if (!this.csatSubmitted) {
          this.csatRequested = true;
          ch.csat = true;
        }
        break;
      case 'feedback_ack':
        break;
      case 'action_status':
        if (typeof frame.call_id === 'string' && this.setActionState(frame.call_id, String(frame.status))) {
          ch.messages = true;
        }
        break;
      case 'error': {
        ch.error = { code: frame.code || 'error', message: frame.message || '' };
        if (frame.client_id && this.markFailed(frame.client_id)) ch.messages = true;
        break;
      }
      case 'pong':
        break;
    }
    return ch;
  }

  // ---------------------------------------------------------------- persistence

  toPersisted(): PersistedState {
    return {
      conversationId: this.conversationId,
      lastSeenId: this.resumeSince(),
      outbox: this.list
        .filter((m) => m.role === 'customer' && m.id == null && m.clientId)
        .map((m) => ({
          clientId: m.clientId as string,
          text: m.content,
          createdAt: m.createdAt,
          ...(m.state === 'failed' ? { failed: true } : {}),
        })),
    };
  }

  /** Restore after a page reload: conversation id and unsent customer messages. */
  restore(p: PersistedState): void {
    this.conversationId = p.conversationId || null;
    for (const o of p.outbox || []) {
      if (!o || typeof o.clientId !== 'string' || typeof o.text !== 'string') continue;
      if (this.byClient.has(o.clientId)) continue;
      const m = this.addPending(o.clientId, o.text, o.createdAt ?? null);
      if (o.failed) m.state = 'failed';
    }
  }

  // ---------------------------------------------------------------- internals

  private setStatus(status: ConversationStatus): boolean {
    if (status === this.status) return false;
    this.status = status;
    if (status === 'open') this.agentName = null;
    return true;
  }

  private resetConversation(): void {
    const keep = this.list.filter((m) => m.id == null && m.role === 'customer');
    this.list = keep;
    this.byId.clear();
    this.byClient = new Map(keep.map((m) => [m.clientId as string, m]));
    for (const m of keep) m.sentGeneration = 0;
    this.status = 'open';
    this.agentName = null;
    this.csatRequested = false;
    this.csatSubmitted = false;
  }

  private create(fields: Omit<ChatMessage, 'version' | 'seq' | 'feedback' | 'sentGeneration'>): ChatMessage {
    const msg: ChatMessage = { ...fields, feedback: null, version: 1, seq: ++this.seq, sentGeneration: 0 };
    this.list.push(msg);
    return msg;
  }

  private upsert(wire: WireMessage, final: boolean): { msg: ChatMessage; created: boolean; changed: boolean } {
    const state: MessageState =
      wire.status === 'failed' ? 'failed' : wire.status === 'streaming' && !final ? 'streaming' : 'complete';
    const citations = Array.isArray(wire.citations) ? wire.citations : [];
    const action =
      wire.action && typeof wire.action.call_id === 'string'
        ? { call_id: wire.action.call_id, title: String(wire.action.title ?? ''), state: String(wire.action.state ?? 'pending') }
        : null;
    let msg = this.byId.get(wire.id);
    if (!msg && wire.client_id) {
      const pending = this.byClient.get(wire.client_id);
      if (pending && pending.id == null) msg = pending;
    }
    if (!msg) {
      msg = this.create({
        key: wire.client_id ? `c:${wire.client_id}` : `m:${wire.id}`,
        id: wire.id,
        clientId: wire.client_id ?? null,
        role: wire.role,
        content: wire.content ?? '',
        citations,
        createdAt: wire.created_at ?? null,
        state,
        action,
      });
      this.byId.set(wire.id, msg);
      if (wire.client_id && !this.byClient.has(wire.client_id)) this.byClient.set(wire.client_id, msg);
      this.sort();
      return { msg, created: true, changed: true };
    }
    // Already known. A final message never regresses to a streaming snapshot.
    if (FINAL.has(msg.state) && state === 'streaming') return { msg, created: false, changed: false };
    const idChanged = msg.id !== wire.id;
    const changed =
      idChanged ||
      msg.state !== state ||
      msg.content !== (wire.content ?? '') ||
      JSON.stringify(msg.citations) !== JSON.stringify(citations) ||
      JSON.stringify(msg.action ?? null) !== JSON.stringify(action);
    if (!changed) return { msg, created: false, changed: false };
    if (idChanged) {
      if (msg.id != null) this.byId.delete(msg.id);
      msg.id = wire.id;
      this.byId.set(wire.id, msg);
    }
    msg.role = wire.role ?? msg.role;
    msg.content = wire.content ?? '';
    msg.citations = citations;
    msg.action = action;
    msg.state = state;
    if (wire.created_at) msg.createdAt = wire.created_at;
    msg.version++;
    if (idChanged) this.sort();
    return { msg, created: false, changed: true };
  }

  private sort(): void {
    // Server ids order persisted messages; unconfirmed ones follow in typing order.
    this.list.sort((a, b) => {
      const ai = a.id ?? Infinity;
      const bi = b.id ?? Infinity;
      if (ai !== bi) return ai < bi ? -1 : 1;
      return a.seq - b.seq;
    });
  }
}

// -------------------------------------------------------------------- storage

export function storageKey(widgetKey: string): string {
  return `supportai:${widgetKey}`;
}

export function loadPersisted(store: KeyValueStore | null, widgetKey: string): PersistedState | null {
  if (!store) return null;
  try {
    const raw = store.getItem(storageKey(widgetKey));
    if (!raw) return null;
    const p = JSON.parse(raw) as Partial<PersistedState>;
    if (!p || typeof p !== 'object') return null;
    return {
      conversationId: typeof p.conversationId === 'string' ? p.conversationId : null,
      lastSeenId: typeof p.lastSeenId === 'number' && p.lastSeenId > 0 ? p.lastSeenId : 0,
      outbox: Array.isArray(p.outbox) ? p.outbox : [],
    };
  } catch {
    return null;
  }
}

export function savePersisted(store: KeyValueStore | null, widgetKey: string, p: PersistedState): void {
  if (!store) return;
  try {
    if (!p.conversationId && p.outbox.length === 0) store.removeItem(storageKey(widgetKey));
    else store.setItem(storageKey(widgetKey), JSON.stringify(p));
  } catch {
    /* storage full or blocked (private mode, sandboxed iframe): run without persistence */
  }
}

/** localStorage if usable, else null. Accessing it can throw in sandboxed frames. */
export function defaultStore(): KeyValueStore | null {
  try {
    const s = globalThis.localStorage;
    if (!s) return null;
    const probe = '__supportai_probe__';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return s;
  } catch {
    return null;
  }
}
