import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SETTINGS_MAX_AGE_MS, pathHidden, saveSettings } from '../src/appearance';
import { readConfig } from '../src/config';
import type { WidgetSettings } from '../src/protocol';
import { SupportAIChatElement, defineElement } from '../src/widget';
import { FakeSocket, MemoryStore, factory, msg } from './fakes';

defineElement();

let el: SupportAIChatElement;
let store: MemoryStore;

const SETTINGS: WidgetSettings = {
  accent_color: '#2563eb',
  accent_text_color: '#ffffff',
  launcher_position: 'right',
  launcher_label: '',
  assistant_name: '',
  avatar_url: null,
  greeting: '',
  suggested_questions: [],
  languages: ['en', 'de', 'fr', 'es'],
  default_language: 'en',
  hidden_paths: [],
};

function mount(overrides: Partial<SupportAIChatElement['config']> = {}) {
  el = document.createElement('supportai-chat');
  el.config = {
    widgetKey: 'pk_test',
    server: 'https://support.example.com',
    language: 'en',
    userToken: null,
    open: false,
    title: null,
    ...overrides,
  };
  el.sessionOptions = { createSocket: factory, store, random: () => 0.5 };
  document.body.appendChild(el);
  return el;
}

const $ = <T extends Element = HTMLElement>(sel: string) => el.shadowRoot!.querySelector<T>(sel)!;
const $$ = (sel: string) => Array.from(el.shadowRoot!.querySelectorAll<HTMLElement>(sel));

function openAndConnect(ready: Record<string, unknown> = {}) {
  $('button[data-testid="launcher"]').click();
  const ws = FakeSocket.last;
  ws.serverOpen();
  ws.serverSend({ type: 'ready', conversation_id: 'conv-1', status: 'open', messages: [], ...ready });
  return ws;
}

function typeAndEnter(text: string, shift = false) {
  const input = $<HTMLTextAreaElement>('textarea[data-testid="input"]');
  input.value = text;
  input.dispatchEvent(new Event('input'));
  input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', shiftKey: shift, bubbles: true, cancelable: true }));
}

beforeEach(() => {
  FakeSocket.reset();
  store = new MemoryStore();
});
afterEach(() => {
  el?.remove();
  document.body.innerHTML = '';
});

describe('<supportai-chat>', () => {
  it('renders a launcher; the panel opens on click and connects lazily', () => {
    saveSettings(store, 'pk_test', SETTINGS, Date.now()); // this browser knows the key's look
    mount();
    const launcher = $('button[data-testid="launcher"]');
    expect(launcher.getAttribute('aria-label')).toBe('Open support chat');
    expect($('[data-testid="panel"]').hidden).toBe(true);
    expect(FakeSocket.instances).toHaveLength(0); // no socket for idle page views
    launcher.click();
    expect($('[data-testid="panel"]').hidden).toBe(false);
    expect(launcher.getAttribute('aria-expanded')).toBe('true');
    expect(FakeSocket.instances).toHaveLength(1);
    expect(el.shadowRoot!.activeElement).toBe($('textarea[data-testid="input"]'));
  });

  it('has labelled buttons and an aria-live log', () => {
    mount({ open: true });
    const log = $('[role="log"]');
    expect(log.getAttribute('aria-live')).toBe('polite');
    for (const b of $$('button')) {
      const name = b.getAttribute('aria-label') || b.textContent?.trim();
      expect(name, b.outerHTML).toBeTruthy();
    }
  });

  it('starts opened with data-open and uses data-title', () => {
    mount({ open: true, title: 'Acme Help' });
    expect($('[data-testid="panel"]').hidden).toBe(false);
    expect($('.title').textContent).toBe('Acme Help');
  });

  it('sends on Enter, not on Shift+Enter; shows a pending bubble until the echo', () => {
    mount();
    const ws = openAndConnect();
    typeAndEnter('line 1', true);
    expect(ws.sentOfType('message')).toHaveLength(0);
    typeAndEnter('Hello there');
    const sent = ws.sentOfType('message');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.text).toBe('Hello there');
    expect($<HTMLTextAreaElement>('textarea[data-testid="input"]').value).toBe('');
    let bubble = $('[data-testid="message"][data-role="customer"]');
    expect(bubble.dataset.pending).toBe('true');
    expect(bubble.hasAttribute('data-message-id')).toBe(false);
    ws.serverSend({ type: 'message', message: msg(11, 'customer', 'Hello there', { client_id: sent[0]!.client_id }) });
    bubble = $('[data-testid="message"][data-role="customer"]');
    expect(bubble.dataset.messageId).toBe('11');
    expect(bubble.hasAttribute('data-pending')).toBe(false);
    expect($$('[data-testid="message"]')).toHaveLength(1);
  });

  it('the send button submits too', () => {
    mount();
    const ws = openAndConnect();
    $<HTMLTextAreaElement>('textarea[data-testid="input"]').value = 'via button';
    $('button[data-testid="send"]').click();
    expect(ws.sentOfType('message')[0]!.text).toBe('via button');
  });

  it('streams an assistant answer, then renders the final markdown with citations and thumbs', () => {
    mount();
    const ws = openAndConnect();
    ws.serverSend({ type: 'typing', role: 'assistant', active: true });
    expect($('[data-testid="typing"]').hidden).toBe(false);
    expect($('[data-testid="typing"]').textContent).toBe('Assistant is typing…');
    ws.serverSend({ type: 'token', message_id: 12, delta: 'You can **re' });
    expect($('[data-testid="typing"]').hidden).toBe(true);
    ws.serverSend({ type: 'token', message_id: 12, delta: 'turn** items' });
    const m = $('[data-testid="message"][data-message-id="12"]');
    expect(m.dataset.role).toBe('assistant');
    expect(m.dataset.streaming).toBe('true');
    expect(m.querySelector('strong')?.textContent).toBe('return');
    expect(m.querySelector('button[data-testid="thumbs-up"]')).toBeNull();

    ws.serverSend({
      type: 'message_done',
      message: msg(12, 'assistant', 'You can **return** items within 30 days [1].', {
        citations: [
          { n: 1, title: 'Returns policy', url: 'https://shop.example/returns', snippet: '30 days' },
          { n: 2, title: 'Internal note', url: null },
          { n: 3, title: 'Evil', url: 'javascript:alert(1)' },
        ],
      }),
    });
    const done = $('[data-testid="message"][data-message-id="12"]');
    expect(done).toBe(m); // same bubble, replaced content
    expect(done.dataset.streaming).toBe('false');
    expect(done.textContent).toContain('within 30 days');
    const cites = Array.from(done.querySelectorAll<HTMLAnchorElement>('a[data-testid="citation"]'));
    expect(cites).toHaveLength(1);
    expect(cites[0]!.href).toBe('https://shop.example/returns');
    expect(cites[0]!.textContent).toBe('[1] Returns policy');
    expect(cites[0]!.rel).toBe('noopener noreferrer nofollow');
    expect(done.textContent).toContain('[2] Internal note');
    expect(done.textContent).toContain('[3] Evil');

    const up = done.querySelector<HTMLButtonElement>('button[data-testid="thumbs-up"]')!;
    const down = done.querySelector<HTMLButtonElement>('button[data-testid="thumbs-down"]')!;
    expect(up.getAttribute('aria-pressed')).toBe('false');
    up.click();
    expect(ws.sentOfType('feedback')).toEqual([{ type: 'feedback', message_id: 12, rating: 'up' }]);
    const after = $('[data-testid="message"][data-message-id="12"]');
    expect(after.querySelector('[data-testid="thumbs-up"]')!.getAttribute('aria-pressed')).toBe('true');
    expect(after.querySelector('[data-testid="thumbs-down"]')!.getAttribute('aria-pressed')).toBe('false');
    void down;
  });

  it('asks to confirm an action once and shows its outcome', () => {
    mount();
    const ws = openAndConnect();
    const action = { call_id: 'call-1', title: 'Cancel order', state: 'pending' };
    ws.serverSend({
      type: 'message_done',
      message: msg(20, 'assistant', 'Please confirm: Cancel order for order number NW-517204.', { action }),
    });
    const asked = $('[data-testid="message"][data-message-id="20"]');
    const confirm = asked.querySelector<HTMLButtonElement>('button[data-testid="action-confirm"]')!;
    expect(confirm.textContent).toBe('Confirm');
    expect(asked.querySelector('button[data-testid="action-decline"]')).not.toBeNull();
    confirm.click();
    expect(ws.sentOfType('confirm')).toEqual([{ type: 'confirm', call_id: 'call-1', accept: true }]);
    // The buttons are gone at once: a second click cannot send a second confirmation.
    const busy = $('[data-testid="message"][data-message-id="20"]');
    expect(busy.querySelector('button[data-testid="action-confirm"]')).toBeNull();
    expect(busy.querySelector('[data-testid="action"]')!.getAttribute('data-state')).toBe('confirming');
    ws.serverSend({ type: 'action_status', call_id: 'call-1', status: 'succeeded' });
    expect($('[data-testid="action"]').getAttribute('data-state')).toBe('succeeded');
    expect($('[data-testid="action"]').textContent).toBe('Confirmed');
  });

  it('never executes HTML from messages', () => {
    mount();
    const ws = openAndConnect();
    ws.serverSend({
      type: 'message',
      message: msg(3, 'agent', '<img src=x onerror="window.__pwned=1"> [x](javascript:alert(1))'),
    });
    ws.serverSend({ type: 'message', message: msg(4, 'customer', '<b>bold?</b>') });
    expect(el.shadowRoot!.querySelector('[data-testid="messages"] img')).toBeNull();
    expect(el.shadowRoot!.querySelector('[onerror]')).toBeNull();
    expect(el.shadowRoot!.querySelector('a[href^="javascript"]')).toBeNull();
    const customer = $('[data-message-id="4"]');
    expect(customer.querySelector('b')).toBeNull();
    expect(customer.textContent).toContain('<b>bold?</b>');
  });

  it('shows the team as away out of office hours, and when it is back', () => {
    mount();
    openAndConnect({ team: { available: false, back_at: '2026-08-03T09:00:00+02:00' } });
    const conn = $('[data-testid="connection"]');
    expect(conn.dataset.team).toBe('away');
    expect(conn.textContent).toMatch(/^Team away · back .+/);
    el.remove();
    FakeSocket.reset();
    mount();
    openAndConnect({ team: { available: true, back_at: null } });
    expect($('[data-testid="connection"]').dataset.team).toBe('in');
    expect($('[data-testid="connection"]').textContent).toBe('Online');
    el.remove();
    FakeSocket.reset();
    mount();
    openAndConnect();
    expect($('[data-testid="connection"]').dataset.team).toBe('');
  });

  it('walks through handoff: waiting banner, agent joined, with_agent, resolved', () => {
    mount();
    const ws = openAndConnect();
    const status = () => $('[data-testid="status"]');
    expect(status().dataset.state).toBe('open');
    const handoff = $<HTMLButtonElement>('button[data-testid="handoff"]');
    expect(handoff.textContent).toBe('Talk to a person');
    handoff.click();
    expect(ws.sentOfType('handoff')).toHaveLength(1);
    expect(handoff.disabled).toBe(true);
    ws.serverSend({ type: 'handoff', status: 'waiting_for_human', reason: 'customer_request' });
    expect(status().dataset.state).toBe('waiting_for_human');
    expect(status().textContent).toBe('Waiting for a person…');
    ws.serverSend({ type: 'agent_joined', agent: { name: 'Alex' } });
    expect(status().dataset.state).toBe('with_agent');
    expect(status().textContent).toBe('Alex joined the conversation');
    ws.serverSend({ type: 'typing', role: 'agent', active: true });
    expect($('[data-testid="typing"]').textContent).toBe('An agent is typing…');
    ws.serverSend({ type: 'message', message: msg(20, 'agent', 'Hi, I am Alex') });
    expect($('[data-testid="typing"]').hidden).toBe(true);
    expect($('[data-message-id="20"]').dataset.role).toBe('agent');
    ws.serverSend({ type: 'status', status: 'resolved' });
    expect(status().dataset.state).toBe('resolved');
  });

  it('shows offline state and queues while disconnected, Chat is unavailable on 4403', () => {
    vi.useFakeTimers();
    try {
      mount();
      const ws = openAndConnect();
      ws.serverClose(1006);
      expect($('[data-testid="status"]').dataset.state).toBe('offline');
      typeAndEnter('still here');
      expect($('[data-testid="message"][data-role="customer"]').dataset.pending).toBe('true');
      FakeSocket.last.serverClose(4403);
      expect($('[data-testid="status"]').textContent).toBe('Chat is unavailable');
      expect($<HTMLTextAreaElement>('textarea[data-testid="input"]').disabled).toBe(true);
      vi.advanceTimersByTime(60_000);
      expect(FakeSocket.instances).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('shows the CSAT form on csat_request and sends the rating', () => {
    mount();
    const ws = openAndConnect();
    expect($('[data-testid="csat"]').hidden).toBe(true);
    ws.serverSend({ type: 'csat_request' });
    const csat = $('[data-testid="csat"]');
    expect(csat.hidden).toBe(false);
    const submit = csat.querySelector<HTMLButtonElement>('button[type="submit"]')!;
    expect(submit.disabled).toBe(true);
    csat.querySelector<HTMLButtonElement>('button[data-score="5"]')!.click();
    expect(submit.disabled).toBe(false);
    csat.querySelector('textarea')!.value = 'Very helpful';
    csat.querySelector('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    expect(ws.sentOfType('csat')).toEqual([{ type: 'csat', score: 5, comment: 'Very helpful' }]);
    expect(csat.textContent).toContain('Thank you');
  });

  it('offers "Rate this conversation" once a conversation exists', () => {
    mount();
    const ws = openAndConnect({ conversation_id: null });
    const rate = $<HTMLButtonElement>('button[data-testid="rate"]');
    expect(rate.hidden).toBe(true);
    ws.serverSend({ type: 'status', status: 'open', conversation_id: 'c-7' });
    ws.serverSend({ type: 'message', message: msg(1, 'customer', 'x', { conversation_id: 'c-7' }) });
    expect(rate.hidden).toBe(false);
    rate.click();
    expect($('[data-testid="csat"]').hidden).toBe(false);
  });

  it('Escape closes the panel and returns focus to the launcher', () => {
    mount();
    openAndConnect();
    const input = $<HTMLTextAreaElement>('textarea[data-testid="input"]');
    input.focus();
    input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    expect($('[data-testid="panel"]').hidden).toBe(true);
    expect(el.shadowRoot!.activeElement).toBe($('button[data-testid="launcher"]'));
  });

  it('traps Tab focus inside the open panel', () => {
    mount();
    openAndConnect();
    const panel = $('[data-testid="panel"]');
    const focusables = Array.from(panel.querySelectorAll<HTMLElement>('button, textarea, [tabindex="0"]')).filter(
      (b) => !(b as HTMLButtonElement).disabled && !b.closest('[hidden]'),
    );
    const last = focusables[focusables.length - 1]!;
    last.focus();
    last.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', bubbles: true, cancelable: true }));
    expect(el.shadowRoot!.activeElement).toBe(focusables[0]);
    focusables[0]!.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', shiftKey: true, bubbles: true }));
    expect(el.shadowRoot!.activeElement).toBe(last);
  });

  it('renders replayed history and de-duplicates it across reconnects', () => {
    vi.useFakeTimers();
    try {
      mount();
      const ws = openAndConnect({ messages: [msg(1, 'customer', 'a'), msg(2, 'assistant', 'b')] });
      ws.serverClose(1006);
      vi.advanceTimersByTime(1000);
      FakeSocket.last.serverOpen();
      FakeSocket.last.serverSend({
        type: 'ready',
        conversation_id: 'conv-1',
        status: 'open',
        messages: [msg(2, 'assistant', 'b'), msg(3, 'system', 'An agent will be with you shortly')],
      });
      expect($$('[data-testid="message"]').map((m) => m.dataset.messageId)).toEqual(['1', '2', '3']);
      expect($('[data-message-id="3"]').dataset.role).toBe('system');
    } finally {
      vi.useRealTimers();
    }
  });

  it('persists the conversation per widget key and resumes after a reload', () => {
    mount();
    openAndConnect({ messages: [msg(1, 'customer', 'a'), msg(2, 'assistant', 'b')] });
    el.remove();
    FakeSocket.reset();
    mount(); // "reload": same store
    // connects right away because there is a conversation to resume
    expect(FakeSocket.instances).toHaveLength(1);
    expect(FakeSocket.last.params.get('conversation')).toBe('conv-1');
  });

  it('counts unread replies while closed', () => {
    mount();
    const ws = openAndConnect();
    $('button[data-testid="close"]').click();
    ws.serverSend({ type: 'message', message: msg(5, 'agent', 'ping') });
    const badge = $('[data-testid="unread"]');
    expect(badge.hidden).toBe(false);
    expect(badge.textContent).toBe('1');
    el.open();
    expect(badge.hidden).toBe(true);
  });

  it('speaks German with data-language="de"', () => {
    mount({ language: 'de', open: true });
    expect($('button[data-testid="handoff"]').textContent).toBe('Mit einem Menschen sprechen');
    expect($('button[data-testid="send"]').getAttribute('aria-label')).toBe('Senden');
  });

  it('fires open/close events for host pages', () => {
    mount();
    const events: string[] = [];
    document.addEventListener('supportai:open', () => events.push('open'));
    document.addEventListener('supportai:close', () => events.push('close'));
    el.open();
    el.close();
    expect(events).toEqual(['open', 'close']);
  });
});

describe('readConfig', () => {
  it('reads data-* from the script tag and derives the server from src', () => {
    const s = document.createElement('script');
    s.setAttribute('src', 'https://support.example.com/static/widget/supportai-widget.js');
    s.dataset.widgetKey = 'pk_live_1';
    s.dataset.language = 'de';
    s.dataset.userToken = 'tok';
    s.dataset.open = 'true';
    s.dataset.title = 'Hilfe';
    expect(readConfig(s, { baseUrl: 'https://shop.example/', languages: ['en'] })).toEqual({
      widgetKey: 'pk_live_1',
      server: 'https://support.example.com',
      language: 'de',
      userToken: 'tok',
      open: true,
      title: 'Hilfe',
      wantedLanguages: ['de', 'en'],
    });
  });

  it('honours data-server, falls back to navigator language, and needs a key', () => {
    const s = document.createElement('script');
    s.setAttribute('src', '/static/widget/supportai-widget.js');
    s.dataset.widgetKey = 'k';
    s.dataset.open = 'false';
    const c = readConfig(s, { baseUrl: 'http://localhost:8000/demo', languages: ['de-DE'] })!;
    expect(c.server).toBe('http://localhost:8000');
    expect(c.language).toBe('de');
    expect(c.open).toBe(false);
    s.dataset.server = 'https://eu.support.example.com/ignored/path';
    expect(readConfig(s, { baseUrl: 'http://localhost:8000/', languages: [] })!.server).toBe(
      'https://eu.support.example.com',
    );
    const none = document.createElement('script');
    expect(readConfig(none)).toBeNull();
  });
});

describe("the widget key's settings", () => {
  const custom: WidgetSettings = {
    ...SETTINGS,
    accent_color: '#0a7d38',
    accent_text_color: '#fefefe',
    launcher_position: 'left',
    launcher_label: 'Fragen?',
    assistant_name: 'Ava',
    avatar_url: 'https://cdn.example.com/ava.png',
    greeting: 'Hallo! Wie kann ich helfen?',
    suggested_questions: ['Wo ist meine Bestellung?', 'Wie funktioniert die Rückgabe?'],
    languages: ['de', 'fr'],
    default_language: 'de',
  };

  it('a first visit fetches them with one short connection, applies and keeps them', () => {
    mount();
    expect(FakeSocket.instances).toHaveLength(1);
    const ws = FakeSocket.last;
    ws.serverOpen();
    ws.serverSend({ type: 'ready', conversation_id: null, status: 'open', messages: [], widget: custom });
    // Not opened and nothing to resume: the socket is closed again.
    expect(ws.closedWith?.code).toBe(1000);
    expect(el.style.getPropertyValue('--supportai-key-accent')).toBe('#0a7d38');
    expect(el.style.getPropertyValue('--supportai-key-accent-text')).toBe('#fefefe');
    expect(el.dataset.position).toBe('left');
    expect($('[data-testid="launcher-label"]').textContent).toBe('Fragen?');
    // The browser asked for English, which this key does not speak: the tenant's German.
    expect(el.language).toBe('de');
    expect($('button[data-testid="launcher"]').getAttribute('aria-label')).toBe('Fragen? – Support-Chat öffnen');
    expect($('.title').textContent).toBe('Ava');
    expect($<HTMLImageElement>('[data-testid="avatar"]').src).toBe('https://cdn.example.com/ava.png');
    expect($('[data-testid="greeting"]').textContent).toBe('Hallo! Wie kann ich helfen?');
    expect($$('[data-testid="suggestion"]').map((b) => b.textContent)).toEqual(custom.suggested_questions);

    // The next page view draws all that from the browser's copy without connecting.
    el.remove();
    FakeSocket.reset();
    mount();
    expect(FakeSocket.instances).toHaveLength(0);
    expect(el.dataset.position).toBe('left');
    expect($<HTMLTextAreaElement>('textarea[data-testid="input"]').placeholder).toBe('Nachricht eingeben…');
  });

  it('a failed fetch of the settings is not retried from an idle page', () => {
    mount();
    FakeSocket.last.serverClose(1006);
    expect(el.session!.connection.state).toBe('idle');
    expect($('[data-testid="connection"]').dataset.connection).toBe('idle');
    $('button[data-testid="launcher"]').click(); // opening tries again
    expect(FakeSocket.instances).toHaveLength(2);
  });

  it('an old copy is refreshed when the page loads', () => {
    saveSettings(store, 'pk_test', custom, Date.now() - SETTINGS_MAX_AGE_MS - 1000);
    mount();
    expect(FakeSocket.instances).toHaveLength(1);
    expect(el.dataset.position).toBe('left'); // drawn from the copy meanwhile
  });

  it('changes language while open and reconnects in it', () => {
    mount();
    const ws = openAndConnect({ widget: custom });
    expect(ws.closedWith?.code).toBe(1000);
    const again = FakeSocket.last;
    expect(again).not.toBe(ws);
    expect(again.params.get('lang')).toBe('de');
    expect($('[data-testid="panel"]').hidden).toBe(false);
    expect($('button[data-testid="send"]').getAttribute('aria-label')).toBe('Senden');
  });

  it('a suggested question is sent with a click, and the suggestions go', () => {
    saveSettings(store, 'pk_test', { ...custom, languages: [] }, Date.now());
    mount();
    const ws = openAndConnect({ widget: { ...custom, languages: [] } });
    $$('[data-testid="suggestion"]')[1]!.click();
    expect(ws.sentOfType('message')[0]!.text).toBe('Wie funktioniert die Rückgabe?');
    expect($$('[data-testid="suggestion"]')).toHaveLength(0);
    expect($('[data-testid="greeting"]').textContent).toBe('Hallo! Wie kann ich helfen?');
  });

  it('stays hidden on the pages the key lists', () => {
    expect(pathHidden(['/checkout/*', '/account'], '/checkout/step-2')).toBe(true);
    expect(pathHidden(['/checkout/*', '/account'], '/account')).toBe(true);
    expect(pathHidden(['/checkout/*', '/account'], '/account/orders')).toBe(false);
    expect(pathHidden(['/a.b'], '/axb')).toBe(false);
    saveSettings(store, 'pk_test', { ...SETTINGS, hidden_paths: [location.pathname] }, Date.now());
    mount();
    expect(el.hidden).toBe(true);
    saveSettings(store, 'pk_test', { ...SETTINGS, hidden_paths: ['/elsewhere/*'] }, Date.now());
    el.remove();
    mount();
    expect(el.hidden).toBe(false);
  });

  it('ignores settings that are not well-formed', () => {
    mount();
    const ws = FakeSocket.last;
    ws.serverOpen();
    ws.serverSend({
      type: 'ready',
      conversation_id: null,
      status: 'open',
      messages: [],
      widget: { ...SETTINGS, accent_color: 'red;background:url(x)', avatar_url: 'javascript:alert(1)' },
    });
    expect(el.style.getPropertyValue('--supportai-key-accent')).toBe('');
    expect($('[data-testid="avatar"]').hidden).toBe(true);
  });
});
