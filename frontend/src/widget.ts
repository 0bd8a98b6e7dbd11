/**
 * <supportai-chat>: the embeddable chat UI (Shadow DOM, no framework).
 *
 * Configure it either by setting `element.config` before it is connected
 * (what main.ts does from the <script> tag), or with the same data-*
 * attributes on the element itself.
 */
import { SETTINGS_MAX_AGE_MS, loadSettings, pathHidden, saveSettings } from './appearance';
import { readConfig, type WidgetConfig } from './config';
import type { ConnectionState } from './connection';
import { resolveLanguage, translator, type Translate } from './i18n';
import { isSafeUrl, renderMarkdown } from './markdown';
import { CLOSE_FORBIDDEN, type TeamState, type WidgetSettings } from './protocol';
import { ChatSession, type SessionOptions } from './session';
import { defaultStore, type ChatMessage, type Changes, type KeyValueStore } from './state';
import { styles } from './styles';

export const TAG_NAME = 'supportai-chat';

const ICON_CHAT =
  '<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/></svg>';
const ICON_CLOSE =
  '<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"><path d="M6 6l12 12M18 6L6 18"/></svg>';
const ICON_SEND =
  '<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M22 2L11 13"/><path d="M22 2l-7 20-4-9-9-4z"/></svg>';
const ICON_UP =
  '<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M7 10v11H3V10zM7 10l4-8a3 3 0 0 1 3 3v4h6a2 2 0 0 1 2 2.3l-1.4 8A2 2 0 0 1 18.6 21H7"/></svg>';
const ICON_DOWN =
  '<svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" style="transform:rotate(180deg)"><path d="M7 10v11H3V10zM7 10l4-8a3 3 0 0 1 3 3v4h6a2 2 0 0 1 2 2.3l-1.4 8A2 2 0 0 1 18.6 21H7"/></svg>';

const FOCUSABLE = 'button, [href], textarea, input, select, [tabindex]:not([tabindex="-1"])';

type BannerState = 'open' | 'waiting_for_human' | 'with_agent' | 'resolved' | 'offline';

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text != null) el.textContent = text;
  return el;
}

export class SupportAIChatElement extends HTMLElement {
  /** Set before connecting to skip reading data-* attributes. */
  config: WidgetConfig | null = null;
  /** Test seam: socket factory / storage overrides for the session. */
  sessionOptions: SessionOptions | null = null;
  session: ChatSession | null = null;

  /** The widget key's settings: from this browser's copy, then from the server's `ready`. */
  settings: WidgetSettings | null = null;
  language = 'en';

  private t: Translate = translator('en');
  /** Office hours of the team, from the server's `ready` (null: none to show). */
  private team: TeamState | null = null;
  private store: KeyValueStore | null = null;
  /** Connected only to fetch the settings: disconnect after `ready` unless opened. */
  private peeking = false;
  private introDrawn: string | null = null;
  private root!: ShadowRoot;
  private els!: {
    launcher: HTMLButtonElement;
    launcherLabel: HTMLSpanElement;
    badge: HTMLSpanElement;
    panel: HTMLDivElement;
    avatar: HTMLImageElement;
    title: HTMLHeadingElement;
    conn: HTMLSpanElement;
    handoff: HTMLButtonElement;
    close: HTMLButtonElement;
    status: HTMLDivElement;
    log: HTMLDivElement;
    intro: HTMLDivElement;
    thread: HTMLDivElement;
    typing: HTMLDivElement;
    error: HTMLDivElement;
    csat: HTMLDivElement;
    form: HTMLFormElement;
    input: HTMLTextAreaElement;
    send: HTMLButtonElement;
    rate: HTMLButtonElement;
  };
  private rendered = new Map<string, { el: HTMLElement; version: number }>();
  private connState: ConnectionState = 'idle';
  private unread = 0;
  private csatOpen = false;
  private csatScore = 0;
  private csatThanksTimer: ReturnType<typeof setTimeout> | null = null;
  private errorTimer: ReturnType<typeof setTimeout> | null = null;
  private unsubscribe: (() => void) | null = null;
  private built = false;
  private handoffRequested = false;

  get isOpen(): boolean {
    return this.hasAttribute('data-open');
  }

  connectedCallback(): void {
    if (this.built) return;
    const cfg = this.config ?? readConfig(this);
    if (!cfg) {
      console.warn('[SupportAI] missing data-widget-key; widget not started');
      return;
    }
    this.config = cfg;
    this.built = true;
    const store = this.sessionOptions && 'store' in this.sessionOptions ? this.sessionOptions.store : defaultStore();
    this.store = store ?? null;
    const cached = loadSettings(this.store, cfg.widgetKey);
    this.settings = cached?.settings ?? null;
    this.language = this.pickLanguage();
    this.t = translator(this.language);
    this.root = this.shadowRoot ?? this.attachShadow({ mode: 'open' });
    this.buildDom(cfg);
    this.session = new ChatSession(
      { server: cfg.server, widgetKey: cfg.widgetKey, userToken: cfg.userToken, language: this.language },
      { ...this.sessionOptions, store },
    );
    this.unsubscribe = this.session.subscribe({
      onChange: (c) => this.onChange(c),
      onConnection: (s, info) => this.onConnection(s, info),
    });
    this.applyLook();
    this.renderAll();
    // Connect early only when there is something to resume, or to fetch the key's settings
    // when this browser has none (or an old copy); otherwise wait until the visitor opens
    // the chat (keeps idle page views off the server).
    if (cfg.open) this.open({ focus: false });
    else if (this.session.hasConversation) this.session.start();
    else if (!cached || Date.now() - cached.savedAt > SETTINGS_MAX_AGE_MS) {
      this.peeking = true;
      this.session.start();
    }
  }

  disconnectedCallback(): void {
    this.session?.stop();
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.built = false;
    this.rendered.clear();
    if (this.root) this.root.innerHTML = '';
  }

  // ------------------------------------------------------------------ public

  open(opts: { focus?: boolean } = {}): void {
    if (!this.built) return;
    const wasOpen = this.isOpen;
    this.setAttribute('data-open', '');
    this.peeking = false;
    this.els.panel.hidden = false;
    this.els.launcher.setAttribute('aria-expanded', 'true');
    this.els.launcher.setAttribute('aria-label', this.launcherName());
    this.unread = 0;
    this.renderBadge();
    if (this.session && !this.session.started) this.session.start();
    this.scrollToBottom(true);
    if (opts.focus !== false) this.els.input.focus();
    if (!wasOpen) this.fire('supportai:open');
  }

  close(): void {
    if (!this.built || !this.isOpen) return;
    this.removeAttribute('data-open');
    this.els.panel.hidden = true;
    this.els.launcher.setAttribute('aria-expanded', 'false');
    this.els.launcher.setAttribute('aria-label', this.launcherName());
    this.session?.stopTyping();
    const active = this.root.activeElement;
    if (active && this.els.panel.contains(active)) this.els.launcher.focus();
    this.fire('supportai:close');
  }

  toggle(): void {
    if (this.isOpen) this.close();
    else this.open();
  }

  // ------------------------------------------------------------------ the key's settings

  /** The browser's and the page's wishes, among the key's languages, else the tenant's. */
  private pickLanguage(): string {
    const cfg = this.config!;
    const s = this.settings;
    return resolveLanguage(null, cfg.wantedLanguages ?? [cfg.language], s?.languages ?? null, s?.default_language ?? null);
  }

  private launcherName(): string {
    const base = this.t(this.isOpen ? 'closeChat' : 'openChat');
    const label = this.settings?.launcher_label;
    return label ? `${label} – ${base}` : base;
  }

  private onSettings(settings: WidgetSettings): void {
    this.settings = settings;
    saveSettings(this.store, this.config!.widgetKey, settings, Date.now());
    const language = this.pickLanguage();
    if (language !== this.language) {
      this.language = language;
      this.t = translator(language);
      this.session?.setLanguage(language);
      this.rebuild();
      // The server answers in the language of the connection: reconnect in the new one.
      if (!this.peeking && this.session?.started) {
        this.session.stop();
        this.session.start();
      }
    }
    this.applyLook();
    if (this.peeking) {
      this.peeking = false;
      if (!this.isOpen && !this.session?.hasConversation) this.session?.stop();
    }
  }

  /** Colours, position, launcher label, header and greeting from the settings. */
  private applyLook(): void {
    const s = this.settings;
    const set = (name: string, value: string | undefined) =>
      value ? this.style.setProperty(name, value) : this.style.removeProperty(name);
    set('--supportai-key-accent', s?.accent_color);
    set('--supportai-key-accent-text', s?.accent_text_color);
    this.dataset.position = s?.launcher_position ?? 'right';
    this.hidden = !!s && typeof location !== 'undefined' && pathHidden(s.hidden_paths, location.pathname);
    const label = s?.launcher_label ?? '';
    this.els.launcherLabel.textContent = label;
    this.els.launcherLabel.hidden = !label;
    this.els.launcher.toggleAttribute('data-labelled', !!label);
    this.els.launcher.setAttribute('aria-label', this.launcherName());
    this.els.title.textContent = this.config?.title || s?.assistant_name || this.t('title');
    const avatar = s?.avatar_url;
    if (avatar && isSafeUrl(avatar)) this.els.avatar.src = avatar;
    this.els.avatar.hidden = !(avatar && isSafeUrl(avatar));
    this.renderIntro();
  }

  /** The greeting, and the suggested questions until the visitor has written. */
  private renderIntro(): void {
    const s = this.settings;
    const intro = this.els.intro;
    const suggest = !!s?.suggested_questions.length && !this.session?.state.messages.length;
    const drawn = `${s?.greeting}\n${suggest ? s?.suggested_questions.join('\n') : ''}`;
    if (drawn === this.introDrawn) return; // answers stream token by token: draw once
    this.introDrawn = drawn;
    intro.textContent = '';
    if (s?.greeting) {
      const greeting = h('div', { class: 'msg', 'data-role': 'assistant', 'data-testid': 'greeting' });
      const bubble = h('div', { class: 'bubble' });
      bubble.append(h('div', { class: 'content' }, s.greeting));
      greeting.append(bubble);
      intro.append(greeting);
    }
    if (s && suggest) {
      const list = h('div', { class: 'suggestions', role: 'group', 'aria-label': this.t('suggestions') });
      for (const question of s.suggested_questions) {
        const button = h('button', { type: 'button', class: 'suggestion', 'data-testid': 'suggestion' }, question);
        button.addEventListener('click', () => {
          if (this.connState === 'unavailable') return;
          this.session?.sendText(question);
          this.scrollToBottom(true);
        });
        list.append(button);
      }
      intro.append(list);
    }
    intro.hidden = !intro.childElementCount;
  }

  /** Build the DOM again in a new language, keeping what the visitor sees and typed. */
  private rebuild(): void {
    const wasOpen = this.isOpen;
    const draft = this.els.input.value;
    this.rendered.clear();
    this.buildDom(this.config!);
    this.els.input.value = draft;
    if (wasOpen) {
      this.els.panel.hidden = false;
      this.els.launcher.setAttribute('aria-expanded', 'true');
    }
    this.renderAll();
  }

  // ------------------------------------------------------------------ DOM

  private buildDom(cfg: WidgetConfig): void {
    const t = this.t;
    const root = this.root;
    root.innerHTML = '';
    const style = h('style');
    style.textContent = styles;

    const launcher = h('button', {
      type: 'button',
      class: 'launcher',
      'data-testid': 'launcher',
      'aria-label': t('openChat'),
      'aria-expanded': 'false',
      'aria-controls': 'supportai-panel',
    });
    launcher.innerHTML = ICON_CHAT;
    const launcherLabel = h('span', { class: 'launcher-label', 'data-testid': 'launcher-label' });
    launcherLabel.hidden = true;
    const badge = h('span', { class: 'badge', 'data-testid': 'unread' });
    badge.hidden = true;
    launcher.append(launcherLabel, badge);

    const panel = h('div', {
      id: 'supportai-panel',
      class: 'panel',
      'data-testid': 'panel',
      role: 'dialog',
      'aria-labelledby': 'supportai-title',
    });
    panel.hidden = true;

    const header = h('header');
    const avatar = h('img', { class: 'avatar', 'data-testid': 'avatar', alt: '' });
    avatar.hidden = true;
    const titles = h('div', { class: 'titles' });
    const title = h('h2', { id: 'supportai-title', class: 'title' }, cfg.title || t('title'));
    const conn = h('span', { class: 'conn', 'data-testid': 'connection', 'data-connection': 'idle' });
    titles.append(title, conn);
    const handoff = h('button', { type: 'button', class: 'handoff', 'data-testid': 'handoff', title: t('talkToPerson') }, t('talkToPerson'));
    const close = h('button', { type: 'button', class: 'close', 'data-testid': 'close', 'aria-label': t('closeChat') });
    close.innerHTML = ICON_CLOSE;
    close.firstElementChild?.setAttribute('width', '20');
    close.firstElementChild?.setAttribute('height', '20');
    header.append(avatar, titles, handoff, close);

    const status = h('div', { class: 'status', 'data-testid': 'status', 'data-state': 'open', role: 'status' });
    status.hidden = true;
    const log = h('div', {
      class: 'log',
      'data-testid': 'messages',
      role: 'log',
      'aria-live': 'polite',
      'aria-label': t('chatLog'),
      tabindex: '0',
    });
    const intro = h('div', { class: 'intro', 'data-testid': 'intro' });
    intro.hidden = true;
    this.introDrawn = null;
    const thread = h('div', { class: 'thread' });
    log.append(intro, thread);
    const typing = h('div', { class: 'typing', 'data-testid': 'typing', 'aria-live': 'polite' });
    typing.hidden = true;
    const error = h('div', { class: 'error', 'data-testid': 'error', role: 'alert' });
    error.hidden = true;
    const csat = h('div', { class: 'csat', 'data-testid': 'csat' });
    csat.hidden = true;

    const form = h('form', { class: 'composer', novalidate: '' });
    const label = h('label', { class: 'sr-only', for: 'supportai-input' }, t('inputLabel'));
    const input = h('textarea', {
      id: 'supportai-input',
      'data-testid': 'input',
      rows: '1',
      placeholder: t('inputPlaceholder'),
      'aria-label': t('inputLabel'),
      maxlength: '4000',
    });
    const send = h('button', { type: 'submit', class: 'send', 'data-testid': 'send', 'aria-label': t('send') });
    send.innerHTML = ICON_SEND;
    form.append(label, input, send);

    const footer = h('footer');
    const rate = h('button', { type: 'button', class: 'link', 'data-testid': 'rate' }, t('rateConversation'));
    rate.hidden = true;
    footer.append(rate, h('span', {}, t('poweredBy')));

    panel.append(header, status, log, typing, error, csat, form, footer);
    root.append(style, panel, launcher);

    this.els = {
      launcher,
      launcherLabel,
      badge,
      panel,
      avatar,
      title,
      conn,
      handoff,
      close,
      status,
      log,
      intro,
      thread,
      typing,
      error,
      csat,
      form,
      input,
      send,
      rate,
    };

    launcher.addEventListener('click', () => this.toggle());
    close.addEventListener('click', () => this.close());
    handoff.addEventListener('click', () => {
      this.session?.requestHandoff();
      this.handoffRequested = true;
      handoff.disabled = true;
    });
    rate.addEventListener('click', () => this.openCsat());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitInput();
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submitInput();
      }
    });
    input.addEventListener('input', () => {
      this.autosize();
      if (input.value.trim()) this.session?.notifyTyping();
      else this.session?.stopTyping();
    });
    panel.addEventListener('keydown', (e) => this.onPanelKeydown(e));
    log.addEventListener('click', (e) => this.onLogClick(e));
  }

  private onPanelKeydown(e: KeyboardEvent): void {
    if (e.key === 'Escape') {
      e.stopPropagation();
      this.close();
      return;
    }
    if (e.key !== 'Tab') return;
    // Focus trap: cycle within the open panel.
    const items = Array.from(this.els.panel.querySelectorAll<HTMLElement>(FOCUSABLE)).filter(
      (el) => !(el as HTMLButtonElement).disabled && !el.closest('[hidden]'),
    );
    if (items.length === 0) return;
    const first = items[0]!;
    const last = items[items.length - 1]!;
    const active = this.root.activeElement as HTMLElement | null;
    if (e.shiftKey && (active === first || !active || !this.els.panel.contains(active))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (active === last || !active || !this.els.panel.contains(active))) {
      e.preventDefault();
      first.focus();
    }
  }

  private onLogClick(e: Event): void {
    const target = (e.target as Element).closest('button');
    if (!target || !this.session) return;
    const msgEl = target.closest<HTMLElement>('[data-testid="message"]');
    const testid = target.getAttribute('data-testid');
    if ((testid === 'thumbs-up' || testid === 'thumbs-down') && msgEl?.dataset.messageId) {
      this.session.sendFeedback(Number(msgEl.dataset.messageId), testid === 'thumbs-up' ? 'up' : 'down');
    } else if ((testid === 'action-confirm' || testid === 'action-decline') && target.dataset.callId) {
      this.session.confirmAction(target.dataset.callId, testid === 'action-confirm');
    } else if (testid === 'retry' && msgEl?.dataset.clientId) {
      this.session.retry(msgEl.dataset.clientId);
    }
  }

  private submitInput(): void {
    const input = this.els.input;
    if (!this.session || !input.value.trim()) return;
    if (this.connState === 'unavailable') return;
    this.session.sendText(input.value);
    input.value = '';
    this.autosize();
    this.scrollToBottom(true);
  }

  private autosize(): void {
    const input = this.els.input;
    input.style.height = 'auto';
    if (input.scrollHeight) input.style.height = `${Math.min(input.scrollHeight + 2, 140)}px`;
  }

  // ------------------------------------------------------------------ session events

  private onChange(c: Changes): void {
    const st = this.session?.state;
    if (c.settings) this.onSettings(c.settings);
    if (c.team !== undefined) {
      this.team = c.team;
      this.renderStatus();
    }
    if (c.messages) this.renderMessages();
    if (c.typing) this.renderTyping();
    if (c.error) {
      this.handoffRequested = false;
      this.showError(c.error.message || this.t('errorGeneric'));
    }
    if (c.status) this.handoffRequested = false;
    if (c.status || c.conversation || c.error) this.renderStatus();
    if (c.status) this.fire('supportai:status', { status: st?.status });
    if (c.csat) {
      if (st?.csatRequested) this.csatOpen = true;
      this.renderCsat();
    }
    for (const m of c.incoming) {
      if (!this.isOpen) this.unread++;
      this.fire('supportai:message', { role: m.role, id: m.id });
    }
    if (c.incoming.length) this.renderBadge();
  }

  private onConnection(s: ConnectionState, info: { closeCode?: number }): void {
    if (this.peeking && (s === 'offline' || s === 'rate_limited' || s === 'unavailable')) {
      // Fetching the settings failed: no retries from an idle page; opening tries again.
      this.peeking = false;
      if (!this.isOpen && !this.session?.hasConversation) {
        this.session?.stop();
        return;
      }
    }
    this.connState = s;
    if (s === 'unavailable' || info.closeCode === CLOSE_FORBIDDEN) {
      this.els.input.disabled = true;
      this.els.send.disabled = true;
    }
    this.renderStatus();
  }

  // ------------------------------------------------------------------ rendering

  private renderAll(): void {
    this.renderMessages();
    this.renderStatus();
    this.renderTyping();
    this.renderCsat();
    this.renderBadge();
  }

  private renderBadge(): void {
    const b = this.els.badge;
    b.hidden = this.unread === 0;
    b.textContent = this.unread > 9 ? '9+' : String(this.unread);
    b.setAttribute('aria-label', this.t('unread', { count: this.unread }));
  }

  private renderStatus(): void {
    const t = this.t;
    const st = this.session?.state;
    const status = st?.status ?? 'open';
    const offline = this.connState === 'offline' || this.connState === 'rate_limited' || this.connState === 'unavailable';
    const banner: BannerState = offline ? 'offline' : status;
    let text = '';
    if (this.connState === 'unavailable') text = t('unavailable');
    else if (this.connState === 'rate_limited') text = t('rateLimited');
    else if (offline) text = st?.unconfirmed().length ? `${t('offline')} ${t('queued')}` : t('offline');
    else if (status === 'waiting_for_human') text = t('waitingForHuman');
    else if (status === 'with_agent') text = st?.agentName ? t('agentJoined', { name: st.agentName }) : t('withAgent');
    else if (status === 'resolved') text = t('resolved');
    const el = this.els.status;
    el.dataset.state = banner;
    el.textContent = text;
    el.hidden = !text;

    const connText: Record<ConnectionState, string> = {
      idle: '',
      connecting: t('connecting'),
      online: this.team && !this.team.available ? this.awayText() : t('online'),
      offline: t('offline'),
      rate_limited: t('rateLimited'),
      unavailable: t('unavailable'),
    };
    this.els.conn.dataset.connection = this.connState;
    this.els.conn.dataset.team = this.team ? (this.team.available ? 'in' : 'away') : '';
    this.els.conn.textContent = connText[this.connState];

    this.els.handoff.disabled =
      this.handoffRequested ||
      this.connState === 'unavailable' ||
      status === 'waiting_for_human' ||
      status === 'with_agent';
    this.els.rate.hidden = !st?.conversationId || !!st.csatSubmitted || this.connState === 'unavailable';
  }

  /** "Team away · back Mon 09:00" in the customer's own time zone and language. */
  private awayText(): string {
    const back = this.team?.back_at ? new Date(this.team.back_at) : null;
    if (!back || Number.isNaN(back.getTime())) return this.t('teamAway');
    const when = back.toLocaleString(this.language, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
    return this.t('teamBack', { when });
  }

  private renderTyping(): void {
    const st = this.session?.state;
    const el = this.els.typing;
    let text = '';
    if (st?.agentTyping.active) {
      text = st.agentTyping.name ? this.t('namedTyping', { name: st.agentTyping.name }) : this.t('agentTyping');
      el.dataset.role = 'agent';
    } else if (st?.assistantTyping) {
      const name = this.settings?.assistant_name;
      text = name ? this.t('namedTyping', { name }) : this.t('assistantTyping');
      el.dataset.role = 'assistant';
    }
    el.textContent = text;
    el.hidden = !text;
  }

  private renderMessages(): void {
    const st = this.session?.state;
    if (!st) return;
    const log = this.els.log;
    const thread = this.els.thread;
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    const seen = new Set<string>();
    let prev: Element | null = null;
    for (const m of st.messages) {
      seen.add(m.key);
      let entry = this.rendered.get(m.key);
      if (!entry) {
        entry = { el: h('div', { 'data-testid': 'message', class: 'msg' }), version: -1 };
        this.rendered.set(m.key, entry);
      }
      if (entry.version !== m.version) {
        this.renderMessage(entry.el, m);
        entry.version = m.version;
      }
      // Keep DOM order equal to state order (moves only what is out of place).
      const expected: Element | null = prev ? prev.nextElementSibling : thread.firstElementChild;
      if (expected !== entry.el) thread.insertBefore(entry.el, expected);
      prev = entry.el;
    }
    for (const [key, entry] of this.rendered) {
      if (!seen.has(key)) {
        entry.el.remove();
        this.rendered.delete(key);
      }
    }
    this.renderIntro();
    this.scrollToBottom(nearBottom);
    this.renderStatus();
  }

  private renderMessage(el: HTMLElement, m: ChatMessage): void {
    const t = this.t;
    el.dataset.role = m.role;
    if (m.id != null) el.dataset.messageId = String(m.id);
    else el.removeAttribute('data-message-id');
    if (m.clientId) el.dataset.clientId = m.clientId;
    el.dataset.state = m.state;
    el.dataset.streaming = m.state === 'streaming' ? 'true' : 'false';
    if (m.state === 'pending') el.dataset.pending = 'true';
    else el.removeAttribute('data-pending');
    el.setAttribute('aria-busy', m.state === 'streaming' ? 'true' : 'false');
    el.textContent = '';

    const assistantName = this.settings?.assistant_name || t('assistant');
    const roleName = { customer: t('you'), assistant: assistantName, agent: t('agent'), system: t('system') }[m.role];
    const who = h('div', { class: m.role === 'agent' ? 'who' : 'who sr-only' }, roleName);
    if (m.role === 'agent' && this.session?.state.agentName) who.textContent = this.session.state.agentName;
    const bubble = h('div', { class: 'bubble' });
    const content = h('div', { class: 'content' });
    if (m.role === 'assistant' || m.role === 'agent') {
      content.innerHTML = renderMarkdown(m.content);
    } else {
      content.textContent = m.content;
    }
    bubble.append(content);

    if (m.citations.length && m.state !== 'streaming') {
      const list = h('ol', { class: 'citations', 'aria-label': t('sources') });
      const sorted = [...m.citations].sort((a, b) => (a.n ?? 0) - (b.n ?? 0));
      sorted.forEach((c, i) => {
        const n = c.n ?? i + 1;
        const li = h('li');
        const label = `[${n}] ${c.title || c.url || ''}`.trim();
        if (isSafeUrl(c.url)) {
          const a = h(
            'a',
            { 'data-testid': 'citation', href: c.url, target: '_blank', rel: 'noopener noreferrer nofollow' },
            label,
          );
          if (c.snippet) a.title = c.snippet;
          li.append(a);
        } else {
          li.append(h('span', { 'data-testid': 'citation-text', ...(c.snippet ? { title: c.snippet } : {}) }, label));
        }
        list.append(li);
      });
      bubble.append(list);
    }
    el.append(who, bubble);

    if (m.action && m.state === 'complete') {
      // An action that changes something runs only when the customer presses Confirm.
      const box = h('div', { class: 'action-confirm', 'data-testid': 'action', 'data-state': m.action.state });
      if (m.action.state === 'pending') {
        box.append(
          h('button', { type: 'button', 'data-testid': 'action-confirm', 'data-call-id': m.action.call_id }, t('confirmAction')),
          h('button', { type: 'button', 'data-testid': 'action-decline', 'data-call-id': m.action.call_id }, t('declineAction')),
        );
      } else {
        const busy = m.action.state === 'confirming' || m.action.state === 'declining';
        const outcome = { succeeded: 'actionDone', declined: 'actionDeclined', failed: 'actionFailed' } as const;
        const done = outcome[m.action.state as keyof typeof outcome] ?? 'actionAnswered';
        box.append(h('span', { role: 'status' }, t(busy ? 'actionWorking' : done)));
      }
      el.append(box);
    }

    if (m.role === 'assistant' && m.id != null && m.state === 'complete') {
      const actions = h('div', { class: 'actions' });
      const up = h('button', {
        type: 'button',
        'data-testid': 'thumbs-up',
        'aria-label': t('helpful'),
        title: t('helpful'),
        'aria-pressed': String(m.feedback === 'up'),
      });
      up.innerHTML = ICON_UP;
      const down = h('button', {
        type: 'button',
        'data-testid': 'thumbs-down',
        'aria-label': t('notHelpful'),
        title: t('notHelpful'),
        'aria-pressed': String(m.feedback === 'down'),
      });
      down.innerHTML = ICON_DOWN;
      actions.append(up, down);
      if (m.feedback) actions.append(h('span', { class: 'sr-only', role: 'status' }, t('feedbackThanks')));
      el.append(actions);
    }

    if (m.state === 'pending' || m.state === 'failed' || m.state === 'interrupted') {
      const note = h('div', { class: 'note' });
      if (m.state === 'pending') note.textContent = t('pending');
      else if (m.state === 'interrupted') note.textContent = t('interrupted');
      else {
        note.append(h('span', {}, t('failed')));
        if (m.role === 'customer' && m.clientId) {
          note.append(h('button', { type: 'button', 'data-testid': 'retry' }, t('retry')));
        }
      }
      el.append(note);
    }
  }

  private openCsat(): void {
    this.csatOpen = true;
    this.renderCsat();
    this.els.csat.querySelector<HTMLElement>('button')?.focus();
  }

  private renderCsat(): void {
    const box = this.els.csat;
    const st = this.session?.state;
    const t = this.t;
    if (st?.csatSubmitted) {
      if (this.csatOpen) {
        // Just submitted: show thanks briefly.
        this.csatOpen = false;
        box.textContent = '';
        box.append(h('p', { class: 'thanks', role: 'status' }, t('csatThanks')));
        box.hidden = false;
        box.dataset.submitted = 'true';
        if (this.csatThanksTimer) clearTimeout(this.csatThanksTimer);
        this.csatThanksTimer = setTimeout(() => (box.hidden = true), 4000);
      }
      this.renderStatus();
      return;
    }
    if (!this.csatOpen) {
      box.hidden = true;
      return;
    }
    if (box.dataset.built === 'true' && !box.hidden) return;
    box.textContent = '';
    box.dataset.built = 'true';
    const form = h('form');
    const fs = h('fieldset');
    fs.append(h('legend', {}, t('csatQuestion')));
    const scores = h('div', { class: 'scores', role: 'radiogroup', 'aria-label': t('csatQuestion') });
    for (let s = 1; s <= 5; s++) {
      const b = h(
        'button',
        { type: 'button', role: 'radio', 'aria-checked': 'false', 'data-score': String(s), 'aria-label': t('csatScore', { score: s }) },
        String(s),
      );
      b.addEventListener('click', () => {
        this.csatScore = s;
        scores.querySelectorAll('button').forEach((x) => x.setAttribute('aria-checked', String(x === b)));
        submit.disabled = false;
      });
      scores.append(b);
    }
    const comment = h('textarea', { 'aria-label': t('csatComment'), placeholder: t('csatComment'), maxlength: '2000' });
    const row = h('div', { class: 'row' });
    const cancel = h('button', { type: 'button', class: 'secondary' }, t('csatCancel'));
    const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'csat-submit' }, t('csatSubmit'));
    submit.disabled = true;
    row.append(cancel, submit);
    fs.append(scores, comment, row);
    form.append(fs);
    box.append(form);
    box.hidden = false;
    this.csatScore = 0;
    cancel.addEventListener('click', () => {
      this.csatOpen = false;
      box.dataset.built = '';
      box.hidden = true;
      this.els.input.focus();
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!this.csatScore) return;
      box.dataset.built = '';
      this.session?.sendCsat(this.csatScore, comment.value);
    });
  }

  private showError(text: string): void {
    const el = this.els.error;
    el.textContent = text;
    el.hidden = false;
    if (this.errorTimer) clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => (el.hidden = true), 8000);
  }

  private scrollToBottom(force: boolean): void {
    if (!force) return;
    const log = this.els.log;
    log.scrollTop = log.scrollHeight;
  }

  private fire(name: string, detail: Record<string, unknown> = {}): void {
    this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true }));
  }
}

export function defineElement(): void {
  if (!customElements.get(TAG_NAME)) customElements.define(TAG_NAME, SupportAIChatElement);
}
