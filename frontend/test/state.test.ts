import { describe, expect, it } from 'vitest';
import { ConversationState, loadPersisted, savePersisted, storageKey } from '../src/state';
import { MemoryStore, msg } from './fakes';

const ready = (messages: unknown[] = [], conversation_id: string | null = 'c1', status = 'open') =>
  ({ type: 'ready', conversation_id, status, messages }) as never;

describe('ConversationState', () => {
  it('matches the customer echo to the optimistic bubble by client_id', () => {
    const s = new ConversationState();
    const p = s.addPending('cid-1', 'hello');
    expect(p.state).toBe('pending');
    expect(s.unconfirmed()).toHaveLength(1);
    s.apply({ type: 'message', message: msg(7, 'customer', 'hello', { client_id: 'cid-1' }) } as never);
    expect(s.messages).toHaveLength(1);
    expect(s.messages[0]).toMatchObject({ key: 'c:cid-1', id: 7, state: 'complete' });
    expect(s.unconfirmed()).toHaveLength(0);
    expect(s.getById(7)).toBe(p);
  });

  it('streams tokens into one assistant bubble, then replaces with message_done', () => {
    const s = new ConversationState();
    s.apply({ type: 'typing', role: 'assistant', active: true });
    expect(s.assistantTyping).toBe(true);
    const c1 = s.apply({ type: 'token', message_id: 9, delta: 'Hel' });
    expect(c1.incoming).toHaveLength(1);
    expect(s.assistantTyping).toBe(false);
    const c2 = s.apply({ type: 'token', message_id: 9, delta: 'lo' });
    expect(c2.incoming).toHaveLength(0);
    expect(s.getById(9)).toMatchObject({ content: 'Hello', state: 'streaming', role: 'assistant' });
    s.apply({
      type: 'message_done',
      message: msg(9, 'assistant', 'Hello **world**', { citations: [{ n: 1, title: 'T', url: 'https://x' }] }),
    } as never);
    expect(s.getById(9)).toMatchObject({ content: 'Hello **world**', state: 'complete' });
    expect(s.getById(9)!.citations).toHaveLength(1);
    // a late token does not corrupt the final text
    s.apply({ type: 'token', message_id: 9, delta: 'zzz' });
    expect(s.getById(9)!.content).toBe('Hello **world**');
    expect(s.messages).toHaveLength(1);
  });

  it('de-duplicates replayed messages by id and keeps order by id', () => {
    const s = new ConversationState();
    s.apply(ready([msg(1, 'customer', 'a'), msg(2, 'assistant', 'b')]));
    const v = s.getById(2)!.version;
    const ch = s.apply(ready([msg(2, 'assistant', 'b'), msg(3, 'agent', 'c'), msg(1, 'customer', 'a')]));
    expect(ch.messages).toBe(true);
    expect(s.messages.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(s.getById(2)!.version).toBe(v); // untouched
    const again = s.apply({ type: 'message', message: msg(3, 'agent', 'c') } as never);
    expect(again.messages).toBe(false);
    expect(again.incoming).toHaveLength(0);
    expect(s.messages).toHaveLength(3);
  });

  it('orders pending customer messages after persisted ones', () => {
    const s = new ConversationState();
    s.addPending('x', 'first pending');
    s.apply(ready([msg(5, 'assistant', 'hi')]));
    s.addPending('y', 'second pending');
    expect(s.messages.map((m) => m.content)).toEqual(['hi', 'first pending', 'second pending']);
  });

  it('resumeSince never skips past an unfinished stream', () => {
    const s = new ConversationState();
    expect(s.resumeSince()).toBe(0);
    s.apply(ready([msg(1, 'customer', 'q')]));
    s.apply({ type: 'token', message_id: 2, delta: 'par' });
    s.apply({ type: 'message', message: msg(3, 'customer', 'another') } as never);
    expect(s.resumeSince()).toBe(1);
    s.markStreamsInterrupted();
    expect(s.getById(2)!.state).toBe('interrupted');
    expect(s.resumeSince()).toBe(1);
    // the replay brings the final version
    s.apply(ready([msg(2, 'assistant', 'partial answer, finished'), msg(3, 'customer', 'another')]));
    expect(s.getById(2)).toMatchObject({ state: 'complete', content: 'partial answer, finished' });
    expect(s.resumeSince()).toBe(3);
  });

  it('a replayed streaming snapshot never overrides a final message', () => {
    const s = new ConversationState();
    s.apply({ type: 'message_done', message: msg(4, 'assistant', 'final') } as never);
    s.apply(ready([msg(4, 'assistant', 'fin', { status: 'streaming' })]));
    expect(s.getById(4)).toMatchObject({ content: 'final', state: 'complete' });
  });

  it('tracks handoff, agent joined, status and typing', () => {
    const s = new ConversationState();
    expect(s.apply({ type: 'handoff', status: 'waiting_for_human', reason: 'customer_request' }).status).toBe(true);
    expect(s.status).toBe('waiting_for_human');
    s.apply({ type: 'agent_joined', agent: { name: 'Alex' } });
    expect(s.status).toBe('with_agent');
    expect(s.agentName).toBe('Alex');
    s.apply({ type: 'typing', role: 'agent', active: true, name: 'Alex' });
    expect(s.agentTyping).toEqual({ active: true, name: 'Alex' });
    s.apply({ type: 'message', message: msg(10, 'agent', 'Hi, Alex here') } as never);
    expect(s.agentTyping.active).toBe(false);
    s.apply({ type: 'status', status: 'resolved' });
    expect(s.status).toBe('resolved');
    expect(s.apply({ type: 'status', status: 'resolved' }).status).toBe(false);
  });

  it('raises csat_request once, not after a rating was sent', () => {
    const s = new ConversationState();
    expect(s.apply({ type: 'csat_request' }).csat).toBe(true);
    s.csatSubmitted = true;
    expect(s.apply({ type: 'csat_request' }).csat).toBe(false);
  });

  it('marks the referenced pending message failed on an error with client_id', () => {
    const s = new ConversationState();
    s.addPending('c9', 'too fast');
    const ch = s.apply({ type: 'error', code: 'rate_limited', message: 'Slow down', client_id: 'c9' });
    expect(ch.error).toEqual({ code: 'rate_limited', message: 'Slow down' });
    expect(s.getByClientId('c9')!.state).toBe('failed');
    expect(s.unconfirmed()).toHaveLength(0);
    expect(s.markPending('c9')!.state).toBe('pending');
  });

  it('starts over when the server answers ready with another conversation, keeping unsent text', () => {
    const s = new ConversationState();
    s.apply(ready([msg(1, 'customer', 'old')], 'old-conv', 'resolved'));
    s.addPending('p1', 'unsent');
    const ch = s.apply(ready([], 'new-conv'));
    expect(ch.conversation).toBe(true);
    expect(s.conversationId).toBe('new-conv');
    expect(s.status).toBe('open');
    expect(s.messages.map((m) => m.content)).toEqual(['unsent']);
  });

  it('learns the conversation id from later frames when ready had none', () => {
    const s = new ConversationState();
    s.apply(ready([], null));
    expect(s.conversationId).toBeNull();
    const ch = s.apply({ type: 'message', message: msg(1, 'customer', 'x', { conversation_id: 'c-new' }) } as never);
    expect(ch.conversation).toBe(true);
    expect(s.conversationId).toBe('c-new');
  });

  it('persists conversation id, resume position and the outbox, and restores them', () => {
    const store = new MemoryStore();
    const s = new ConversationState();
    s.apply(ready([msg(1, 'customer', 'a'), msg(2, 'assistant', 'b')], 'conv-9'));
    s.addPending('p1', 'not yet sent');
    s.addPending('p2', 'refused');
    s.markFailed('p2');
    savePersisted(store, 'pk_1', s.toPersisted());
    expect(JSON.parse(store.getItem(storageKey('pk_1'))!)).toMatchObject({ conversationId: 'conv-9', lastSeenId: 2 });

    const restored = new ConversationState();
    restored.restore(loadPersisted(store, 'pk_1')!);
    expect(restored.conversationId).toBe('conv-9');
    expect(restored.messages.map((m) => [m.clientId, m.content, m.state])).toEqual([
      ['p1', 'not yet sent', 'pending'],
      ['p2', 'refused', 'failed'],
    ]);
    // keys are per widget key
    expect(loadPersisted(store, 'pk_other')).toBeNull();
  });

  it('tolerates broken or blocked storage', () => {
    const store = new MemoryStore();
    store.setItem(storageKey('k'), '{broken');
    expect(loadPersisted(store, 'k')).toBeNull();
    const throwing = {
      getItem: () => {
        throw new Error('blocked');
      },
      setItem: () => {
        throw new Error('blocked');
      },
      removeItem: () => {},
    };
    expect(loadPersisted(throwing, 'k')).toBeNull();
    expect(() => savePersisted(throwing, 'k', { conversationId: 'c', lastSeenId: 1, outbox: [] })).not.toThrow();
  });
});
