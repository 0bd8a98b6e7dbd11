import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChatSession, TYPING_IDLE_MS } from '../src/session';
import { FakeSocket, MemoryStore, factory, msg } from './fakes';

const config = { server: 'https://support.example.com', widgetKey: 'pk_test', language: 'en' };

function newSession(store = new MemoryStore(), extra: Record<string, unknown> = {}) {
  let n = 0;
  const s = new ChatSession(config, {
    createSocket: factory,
    store,
    random: () => 0.5, // no jitter
    idGenerator: () => `cid-${++n}`,
    ...extra,
  });
  return s;
}

function connect(s: ChatSession, readyFrame: Record<string, unknown> = {}) {
  if (!s.started) s.start();
  const ws = FakeSocket.last;
  ws.serverOpen();
  ws.serverSend({ type: 'ready', conversation_id: 'conv-1', status: 'open', messages: [], ...readyFrame });
  return ws;
}

beforeEach(() => {
  FakeSocket.reset();
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ChatSession connect & send', () => {
  it('connects with the widget key and language, no conversation the first time', () => {
    const s = newSession();
    s.start();
    const p = FakeSocket.last.params;
    expect(FakeSocket.last.url.startsWith('wss://support.example.com/ws/chat/?')).toBe(true);
    expect(p.get('key')).toBe('pk_test');
    expect(p.get('lang')).toBe('en');
    expect(p.has('conversation')).toBe(false);
    expect(p.has('since')).toBe(false);
    expect(p.has('token')).toBe(false);
  });

  it('passes the end-user token', () => {
    const s = new ChatSession({ ...config, userToken: 'signed.tok' }, { createSocket: factory });
    s.start();
    expect(FakeSocket.last.params.get('token')).toBe('signed.tok');
  });

  it('sends a message with a client_id once ready and marks it sent on echo', () => {
    const s = newSession();
    const ws = connect(s);
    const m = s.sendText('Where is my order?\n')!;
    expect(m.state).toBe('pending');
    expect(ws.sentOfType('message')).toEqual([{ type: 'message', client_id: 'cid-1', text: 'Where is my order?' }]);
    ws.serverSend({ type: 'message', message: msg(1, 'customer', 'Where is my order?', { client_id: 'cid-1' }) });
    expect(s.state.messages).toHaveLength(1);
    expect(s.state.messages[0]).toMatchObject({ id: 1, state: 'complete' });
  });

  it('ignores blank input', () => {
    const s = newSession();
    connect(s);
    expect(s.sendText('   \n ')).toBeNull();
    expect(s.state.messages).toHaveLength(0);
  });

  it('queues what was typed before the first connect and sends it after ready', () => {
    const s = newSession();
    s.sendText('typed while connecting'); // starts the connection
    const ws = FakeSocket.last;
    ws.serverOpen();
    expect(ws.sentOfType('message')).toHaveLength(0); // not before ready
    ws.serverSend({ type: 'ready', conversation_id: null, status: 'open', messages: [] });
    expect(ws.sentOfType('message')).toEqual([{ type: 'message', client_id: 'cid-1', text: 'typed while connecting' }]);
  });

  it('pings every 25 s while open', () => {
    const s = newSession();
    const ws = connect(s);
    vi.advanceTimersByTime(25_000);
    expect(ws.sentOfType('ping')).toHaveLength(1);
    ws.serverSend({ type: 'pong' });
    vi.advanceTimersByTime(25_000);
    expect(ws.sentOfType('ping')).toHaveLength(2);
  });
});

describe('reconnect & replay', () => {
  it('reconnects with exponential backoff, passing conversation and since', () => {
    const s = newSession();
    const ws1 = connect(s, {
      messages: [msg(1, 'customer', 'q'), msg(2, 'assistant', 'a')],
    });
    ws1.serverClose(1006);
    expect(s.connection.state).toBe('offline');
    expect(FakeSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(999);
    expect(FakeSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.instances).toHaveLength(2);
    const p = FakeSocket.last.params;
    expect(p.get('conversation')).toBe('conv-1');
    expect(p.get('since')).toBe('2');

    // second failure doubles the delay
    FakeSocket.last.serverClose(1006);
    vi.advanceTimersByTime(1999);
    expect(FakeSocket.instances).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.instances).toHaveLength(3);
    FakeSocket.last.serverClose(1006);
    vi.advanceTimersByTime(4000);
    expect(FakeSocket.instances).toHaveLength(4);
  });

  it('caps the backoff at 30 s and resets it after ready', () => {
    const s = newSession();
    s.start();
    for (let i = 0; i < 8; i++) {
      FakeSocket.last.serverClose(1011);
      vi.advanceTimersByTime(30_000);
    }
    expect(FakeSocket.instances).toHaveLength(9);
    expect(s.connection.attempt).toBe(8);
    connect(s);
    expect(s.connection.attempt).toBe(0);
    FakeSocket.last.serverClose(1006);
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.instances).toHaveLength(10);
  });

  it('does not retry after 4403 and reports unavailable', () => {
    const s = newSession();
    const states: string[] = [];
    s.subscribe({ onChange: () => {}, onConnection: (st) => states.push(st) });
    s.start();
    FakeSocket.last.serverClose(4403);
    vi.advanceTimersByTime(120_000);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(s.connection.state).toBe('unavailable');
    expect(states).toContain('unavailable');
  });

  it('backs off for at least 5 s after 4429', () => {
    const s = newSession();
    s.start();
    FakeSocket.last.serverClose(4429);
    expect(s.connection.state).toBe('rate_limited');
    vi.advanceTimersByTime(4999);
    expect(FakeSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.instances).toHaveLength(2);
  });

  it('never loses typed text: offline messages are queued and sent after the replay', () => {
    const s = newSession();
    const ws1 = connect(s, { messages: [msg(1, 'customer', 'hi')] });
    ws1.serverClose(1006);
    s.sendText('sent while offline'); // triggers an immediate reconnect attempt
    expect(FakeSocket.instances).toHaveLength(2);
    const ws2 = FakeSocket.last;
    ws2.serverOpen();
    ws2.serverSend({ type: 'ready', conversation_id: 'conv-1', status: 'open', messages: [] });
    expect(ws2.sentOfType('message')).toEqual([{ type: 'message', client_id: 'cid-1', text: 'sent while offline' }]);
  });

  it('does not resend a message whose echo arrives in the replay', () => {
    const s = newSession();
    const ws1 = connect(s, { messages: [msg(1, 'customer', 'hi')] });
    s.sendText('in flight');
    expect(ws1.sentOfType('message')).toHaveLength(1);
    ws1.serverClose(1006); // echo lost
    vi.advanceTimersByTime(1000);
    const ws2 = FakeSocket.last;
    expect(ws2.params.get('since')).toBe('1');
    ws2.serverOpen();
    ws2.serverSend({
      type: 'ready',
      conversation_id: 'conv-1',
      status: 'open',
      messages: [msg(2, 'customer', 'in flight', { client_id: 'cid-1' }), msg(3, 'assistant', 'answer')],
    });
    expect(ws2.sentOfType('message')).toHaveLength(0);
    expect(s.state.messages.map((m) => m.id)).toEqual([1, 2, 3]);
  });

  it('resends an in-flight message whose echo is not in the replay', () => {
    const s = newSession();
    const ws1 = connect(s);
    s.sendText('lost');
    ws1.serverClose(1006);
    vi.advanceTimersByTime(1000);
    const ws2 = connect(s);
    expect(ws2.sentOfType('message')).toEqual([{ type: 'message', client_id: 'cid-1', text: 'lost' }]);
  });

  it('resumes from before an interrupted stream and replaces it with the final text', () => {
    const s = newSession();
    const ws1 = connect(s, { messages: [msg(1, 'customer', 'q')] });
    ws1.serverSend({ type: 'token', message_id: 2, delta: 'Half an ans' });
    ws1.serverClose(1006);
    expect(s.state.getById(2)!.state).toBe('interrupted');
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.last.params.get('since')).toBe('1');
    connect(s, { messages: [msg(2, 'assistant', 'Half an answer, completed.')] });
    expect(s.state.getById(2)).toMatchObject({ state: 'complete', content: 'Half an answer, completed.' });
    expect(s.state.messages).toHaveLength(2);
  });

  it('closes a stale socket (no frames for a minute) and reconnects', () => {
    let now = 0;
    const s = newSession(new MemoryStore(), { now: () => now });
    const ws = connect(s);
    now = 25_000;
    vi.advanceTimersByTime(25_000);
    now = 50_000;
    vi.advanceTimersByTime(25_000);
    expect(FakeSocket.instances).toHaveLength(1);
    now = 75_000;
    vi.advanceTimersByTime(25_000);
    expect(ws.closedWith).toEqual({ code: 4000, reason: 'stale' });
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.instances).toHaveLength(2);
  });

  it('after a reload asks for the full history, then resumes with since', () => {
    const store = new MemoryStore();
    const s1 = newSession(store);
    connect(s1, { messages: [msg(1, 'customer', 'q'), msg(2, 'assistant', 'a')] });
    s1.stop();

    FakeSocket.reset();
    const s2 = newSession(store);
    expect(s2.hasConversation).toBe(true);
    s2.start();
    expect(FakeSocket.last.params.get('conversation')).toBe('conv-1');
    expect(FakeSocket.last.params.has('since')).toBe(false);
    FakeSocket.last.serverOpen();
    FakeSocket.last.serverSend({
      type: 'ready',
      conversation_id: 'conv-1',
      status: 'open',
      messages: [msg(1, 'customer', 'q'), msg(2, 'assistant', 'a')],
    });
    expect(s2.state.messages).toHaveLength(2);
    FakeSocket.last.serverClose(1006);
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.last.params.get('since')).toBe('2');
  });

  it('restores unsent messages after a reload and sends them', () => {
    const store = new MemoryStore();
    const s1 = newSession(store);
    s1.sendText('typed, then page closed');
    s1.stop();
    FakeSocket.reset();
    const s2 = newSession(store);
    expect(s2.state.messages.map((m) => m.content)).toEqual(['typed, then page closed']);
    const ws = connect(s2);
    expect(ws.sentOfType('message')).toEqual([{ type: 'message', client_id: 'cid-1', text: 'typed, then page closed' }]);
  });
});

describe('control frames', () => {
  it('sends handoff, feedback and csat; queues them while offline', () => {
    const s = newSession();
    const ws1 = connect(s, { messages: [msg(5, 'assistant', 'answer')] });
    s.requestHandoff();
    s.sendFeedback(5, 'up');
    s.sendCsat(4, '  great  ');
    expect(ws1.sent.filter((f) => f.type !== 'ping')).toEqual([
      { type: 'handoff' },
      { type: 'feedback', message_id: 5, rating: 'up' },
      { type: 'csat', score: 4, comment: 'great' },
    ]);
    expect(s.state.getById(5)!.feedback).toBe('up');

    ws1.serverClose(1006);
    s.sendFeedback(5, 'down');
    s.requestHandoff();
    vi.advanceTimersByTime(1000);
    const ws2 = connect(s);
    expect(ws2.sent).toEqual([{ type: 'feedback', message_id: 5, rating: 'down' }, { type: 'handoff' }]);
  });

  it('rejects out-of-range CSAT scores', () => {
    const s = newSession();
    const ws = connect(s);
    s.sendCsat(0, '');
    s.sendCsat(6, '');
    expect(ws.sentOfType('csat')).toHaveLength(0);
  });

  it('throttles typing notifications and sends typing:false when idle', () => {
    let now = 0;
    const s = newSession(new MemoryStore(), { now: () => now });
    const ws = connect(s);
    s.notifyTyping();
    now = 1000;
    s.notifyTyping();
    now = 2000;
    s.notifyTyping();
    expect(ws.sentOfType('typing')).toEqual([{ type: 'typing', active: true }]);
    now = 3500;
    s.notifyTyping();
    expect(ws.sentOfType('typing')).toHaveLength(2);
    vi.advanceTimersByTime(TYPING_IDLE_MS);
    expect(ws.sentOfType('typing').slice(-1)[0]).toEqual({ type: 'typing', active: false });
  });

  it('fails in-flight messages on an unattributed rate_limited error so they can be retried', () => {
    const s = newSession();
    const ws = connect(s);
    s.sendText('spam');
    ws.serverSend({ type: 'error', code: 'rate_limited', message: 'Slow down' });
    expect(s.state.getByClientId('cid-1')!.state).toBe('failed');
    s.retry('cid-1');
    expect(ws.sentOfType('message')).toHaveLength(2);
    expect(s.state.getByClientId('cid-1')!.state).toBe('pending');
  });
});
