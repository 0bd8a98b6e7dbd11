/**
 * The widget key's settings (colours, launcher, name, greeting, languages, hidden pages):
 * checked, kept per key in the browser so the launcher looks right before any connection,
 * and matched against the page's path.
 */
import type { WidgetSettings } from './protocol';
import type { KeyValueStore } from './state';

/** Older copies are refreshed with a short connection when the page loads. */
export const SETTINGS_MAX_AGE_MS = 15 * 60_000;

const COLOR = /^#[0-9a-f]{6}$/i;

function text(value: unknown, max: number): string {
  return typeof value === 'string' ? value.slice(0, max) : '';
}

function texts(value: unknown, max: number, count: number): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && !!v).slice(0, count).map((v) => v.slice(0, max)) : [];
}

/** Settings from the server (or storage) with every field checked; null when unusable. */
export function cleanSettings(raw: unknown): WidgetSettings | null {
  if (!raw || typeof raw !== 'object') return null;
  const r = raw as Record<string, unknown>;
  const accent = text(r.accent_color, 7);
  const accentText = text(r.accent_text_color, 7);
  const avatar = text(r.avatar_url, 500);
  return {
    accent_color: COLOR.test(accent) ? accent : '',
    accent_text_color: COLOR.test(accentText) ? accentText : '',
    launcher_position: r.launcher_position === 'left' ? 'left' : 'right',
    launcher_label: text(r.launcher_label, 40),
    assistant_name: text(r.assistant_name, 60),
    avatar_url: /^https?:\/\//i.test(avatar) ? avatar : null,
    greeting: text(r.greeting, 500),
    suggested_questions: texts(r.suggested_questions, 150, 5),
    languages: texts(r.languages, 8, 10),
    default_language: text(r.default_language, 8),
    hidden_paths: texts(r.hidden_paths, 200, 50),
  };
}

function storageKey(widgetKey: string): string {
  return `supportai:settings:${widgetKey}`;
}

export function loadSettings(
  store: KeyValueStore | null,
  widgetKey: string,
): { settings: WidgetSettings; savedAt: number } | null {
  try {
    const saved = JSON.parse(store?.getItem(storageKey(widgetKey)) || 'null') as { s?: unknown; at?: unknown } | null;
    const settings = cleanSettings(saved?.s);
    return settings ? { settings, savedAt: Number(saved?.at) || 0 } : null;
  } catch {
    return null;
  }
}

export function saveSettings(store: KeyValueStore | null, widgetKey: string, settings: WidgetSettings, now: number): void {
  try {
    store?.setItem(storageKey(widgetKey), JSON.stringify({ s: settings, at: now }));
  } catch {
    /* storage full or blocked: the next page view asks again */
  }
}

/** Whether `path` matches one of the patterns, where `*` stands for any characters. */
export function pathHidden(patterns: readonly string[], path: string): boolean {
  return patterns.some((pattern) => {
    const source = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    return new RegExp(`^${source}$`).test(path);
  });
}
