import { describe, expect, it } from 'vitest';
import { backoffDelay, buildSocketUrl, parseFrame, randomId } from '../src/protocol';

describe('buildSocketUrl', () => {
  it('maps https to wss and adds the key', () => {
    expect(buildSocketUrl({ server: 'https://support.example.com', key: 'pk_live_x' })).toBe(
      'wss://support.example.com/ws/chat/?key=pk_live_x',
    );
  });
  it('adds the page the widget is on, for routing rules', () => {
    const u = new URL(
      buildSocketUrl({ server: 'https://s', key: 'k', page: 'https://shop.example/pricing?a=1&b=2' }),
    );
    expect(u.searchParams.get('page')).toBe('https://shop.example/pricing?a=1&b=2');
  });
  it('maps http to ws and keeps the port', () => {
    expect(buildSocketUrl({ server: 'http://localhost:8000', key: 'k' })).toBe('ws://localhost:8000/ws/chat/?key=k');
  });
  it('adds conversation, since, token and lang, url-encoded', () => {
    const u = new URL(
      buildSocketUrl({
        server: 'https://s.example',
        key: 'pk&1',
        conversationId: 'c-1',
        since: 42,
        token: 'a.b=c',
        lang: 'de',
      }),
    );
    expect(u.searchParams.get('key')).toBe('pk&1');
    expect(u.searchParams.get('conversation')).toBe('c-1');
    expect(u.searchParams.get('since')).toBe('42');
    expect(u.searchParams.get('token')).toBe('a.b=c');
    expect(u.searchParams.get('lang')).toBe('de');
  });
  it('omits since without a conversation, and since=0', () => {
    const a = new URL(buildSocketUrl({ server: 'https://s', key: 'k', since: 5 }));
    expect(a.searchParams.has('since')).toBe(false);
    const b = new URL(buildSocketUrl({ server: 'https://s', key: 'k', conversationId: 'c', since: 0 }));
    expect(b.searchParams.has('since')).toBe(false);
    expect(b.searchParams.get('conversation')).toBe('c');
  });
});

describe('parseFrame', () => {
  it('accepts known frame types', () => {
    expect(parseFrame('{"type":"pong"}')).toEqual({ type: 'pong' });
    expect(parseFrame('{"type":"token","message_id":1,"delta":"a"}')?.type).toBe('token');
  });
  it('rejects junk', () => {
    expect(parseFrame('not json')).toBeNull();
    expect(parseFrame('[1,2]')).toBeNull();
    expect(parseFrame('null')).toBeNull();
    expect(parseFrame('{"type":"nope"}')).toBeNull();
    expect(parseFrame('{"no":"type"}')).toBeNull();
    expect(parseFrame(new ArrayBuffer(2))).toBeNull();
  });
});

describe('backoffDelay', () => {
  it('grows exponentially from 1 s and caps at 30 s', () => {
    const mid = () => 0.5; // no jitter
    expect([0, 1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay(n, mid))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });
  it('jitters by ±20 % within [1 s, 30 s]', () => {
    expect(backoffDelay(2, () => 0)).toBe(3200);
    expect(backoffDelay(2, () => 1)).toBe(4800);
    expect(backoffDelay(0, () => 0)).toBe(1000);
    expect(backoffDelay(20, () => 1)).toBe(30000);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(i % 8, Math.random);
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThanOrEqual(30000);
    }
  });
  it('honours a minimum (rate limiting)', () => {
    expect(backoffDelay(0, () => 0.5, 5000)).toBe(5000);
  });
});

it('randomId gives distinct ids', () => {
  const ids = new Set(Array.from({ length: 50 }, randomId));
  expect(ids.size).toBe(50);
});
