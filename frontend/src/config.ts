/**
 * Reading the embed configuration from the widget's own <script> tag.
 */
import { resolveLanguage } from './i18n';

export interface WidgetConfig {
  widgetKey: string;
  /** http(s) origin of the SupportAI server, e.g. https://support.example.com */
  server: string;
  language: string;
  /** What the page and the browser ask for, in order (data-language first); the widget key's
   * settings pick the language from these once they are known. */
  wantedLanguages?: string[];
  userToken: string | null;
  open: boolean;
  title: string | null;
}

/** The <script> that loaded us: currentScript while executing, else the first tag with a key. */
export function findOwnScript(doc: Document = document): HTMLScriptElement | null {
  const current = doc.currentScript;
  if (current instanceof HTMLScriptElement && current.dataset.widgetKey) return current;
  return doc.querySelector<HTMLScriptElement>('script[data-widget-key]');
}

function originOf(url: string, base: string): string | null {
  try {
    const u = new URL(url, base);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}

function flag(value: string | null | undefined): boolean {
  return value != null && /^(|true|1|yes|open)$/i.test(value.trim());
}

/**
 * Build the config from data-* attributes of an element (the script tag or a
 * hand-written <supportai-chat>). Returns null when there is no widget key.
 */
export function readConfig(
  el: Element,
  opts: { baseUrl?: string; languages?: readonly string[] } = {},
): WidgetConfig | null {
  const base = opts.baseUrl ?? (typeof location !== 'undefined' ? location.href : 'http://localhost/');
  const data = (name: string) => el.getAttribute(`data-${name}`);
  const widgetKey = (data('widget-key') || '').trim();
  if (!widgetKey) return null;
  const src = el instanceof HTMLScriptElement ? el.getAttribute('src') : null;
  const explicit = (data('server') || '').trim();
  const server =
    (explicit ? originOf(explicit, base) : null) ??
    (src ? originOf(src, base) : null) ??
    originOf(base, base) ??
    'http://localhost';
  const languages =
    opts.languages ?? (typeof navigator !== 'undefined' ? navigator.languages || [navigator.language] : []);
  return {
    widgetKey,
    server,
    language: resolveLanguage(data('language'), languages),
    wantedLanguages: [data('language') || '', ...languages].filter(Boolean),
    userToken: data('user-token') || null,
    open: flag(data('open')),
    title: data('title') || null,
  };
}
