/**
 * Shadow-DOM styles. Host pages theme the widget with CSS custom properties
 * on the element (they inherit through the shadow boundary), e.g.
 *   supportai-chat { --supportai-accent: #0a7d38; }
 * The widget key's colours from the admin come in as --supportai-key-*: they
 * replace the built-in defaults, and a host page's own theme still wins.
 */
export const styles = /* css */ `
:host {
  --_accent: var(--supportai-accent, var(--supportai-key-accent, #2563eb));
  --_accent-text: var(--supportai-accent-contrast, var(--supportai-key-accent-text, #ffffff));
  --_bg: var(--supportai-background, #ffffff);
  --_text: var(--supportai-text, #1f2937);
  --_muted: var(--supportai-muted, #6b7280);
  --_bubble: var(--supportai-bubble, #f3f4f6);
  --_border: var(--supportai-border, #e5e7eb);
  --_radius: var(--supportai-radius, 14px);
  --_font: var(--supportai-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  --_z: var(--supportai-z-index, 2147483000);
  --_offset: var(--supportai-offset, 20px);
  --_focus: var(--supportai-focus, #f59e0b);
  all: initial;
  position: fixed;
  right: var(--_offset);
  bottom: var(--_offset);
  z-index: var(--_z);
  font-family: var(--_font);
  font-size: 15px;
  line-height: 1.45;
  color: var(--_text);
}
:host([hidden]) { display: none !important; }
:host([data-position="left"]) { right: auto; left: var(--_offset); }
:host([data-position="left"]) .panel { right: auto; left: 0; }
:host([data-position="left"]) .launcher { margin-left: 0; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
.sr-only {
  position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
button, textarea { font: inherit; color: inherit; }
button { cursor: pointer; }
button:disabled { cursor: default; opacity: .55; }
:focus-visible { outline: 3px solid var(--_focus); outline-offset: 2px; }

.launcher {
  width: 58px; height: 58px; border-radius: 50%; border: 0;
  background: var(--_accent); color: var(--_accent-text);
  box-shadow: 0 6px 20px rgba(0,0,0,.25);
  display: grid; place-items: center; position: relative;
  margin-left: auto;
}
.launcher svg { width: 28px; height: 28px; }
.launcher[data-labelled] { width: auto; border-radius: 29px; padding: 0 20px 0 16px; display: flex; gap: 8px; font-weight: 600; }
.avatar { width: 32px; height: 32px; border-radius: 50%; object-fit: cover; flex: none; }
.badge {
  position: absolute; top: -4px; right: -4px; min-width: 22px; height: 22px; padding: 0 6px;
  border-radius: 11px; background: #dc2626; color: #fff; font-size: 12px; font-weight: 700;
  display: grid; place-items: center; border: 2px solid #fff;
}

.panel {
  position: absolute; right: 0; bottom: 74px;
  width: 380px; height: min(620px, calc(100vh - 120px));
  background: var(--_bg); color: var(--_text);
  border-radius: var(--_radius); border: 1px solid var(--_border);
  box-shadow: 0 12px 40px rgba(0,0,0,.22);
  display: flex; flex-direction: column; overflow: hidden;
}
header {
  display: flex; align-items: center; gap: 8px; padding: 12px 12px 12px 16px;
  background: var(--_accent); color: var(--_accent-text);
}
.titles { flex: 1; min-width: 0; }
.title { margin: 0; font-size: 16px; font-weight: 650; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.conn { font-size: 12px; opacity: .9; display: flex; align-items: center; gap: 6px; }
.conn::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #9ca3af; }
.conn[data-connection="online"]::before { background: #22c55e; }
.conn[data-connection="offline"]::before, .conn[data-connection="rate_limited"]::before { background: #f59e0b; }
.conn[data-connection="unavailable"]::before { background: #ef4444; }
.handoff {
  border: 1px solid currentColor; background: transparent; color: inherit;
  border-radius: 999px; padding: 4px 10px; font-size: 13px; white-space: nowrap;
}
.close {
  border: 0; background: transparent; color: inherit; width: 34px; height: 34px;
  border-radius: 8px; font-size: 22px; line-height: 1; display: grid; place-items: center;
}
header :focus-visible { outline-color: var(--_accent-text); }

.status {
  padding: 8px 14px; font-size: 13px; background: #fef3c7; color: #78350f;
  border-bottom: 1px solid var(--_border);
}
.status[data-state="with_agent"] { background: #dcfce7; color: #14532d; }
.status[data-state="resolved"] { background: #e0e7ff; color: #312e81; }
.status[data-state="offline"] { background: #fee2e2; color: #7f1d1d; }

.log { flex: 1; overflow-y: auto; padding: 14px; display: flex; flex-direction: column; gap: 10px; overscroll-behavior: contain; }
.thread, .intro { display: flex; flex-direction: column; gap: 10px; }
.suggestions { display: flex; flex-wrap: wrap; gap: 6px; }
.suggestion {
  border: 1px solid var(--_accent); color: var(--_accent); background: var(--_bg);
  border-radius: 999px; padding: 5px 12px; font-size: 13px; text-align: left;
}
.msg { display: flex; flex-direction: column; max-width: 86%; align-self: flex-start; }
.msg[data-role="customer"] { align-self: flex-end; align-items: flex-end; }
.msg[data-role="system"] { align-self: center; max-width: 95%; text-align: center; }
.who { font-size: 12px; color: var(--_muted); margin: 0 4px 2px; }
.bubble {
  background: var(--_bubble); border-radius: var(--_radius); padding: 8px 12px;
  overflow-wrap: anywhere; min-height: 1.45em;
}
.msg[data-role="customer"] .bubble { background: var(--_accent); color: var(--_accent-text); white-space: pre-wrap; }
.msg[data-role="customer"] .bubble a { color: inherit; }
.msg[data-role="agent"] .bubble { background: #ecfdf5; border: 1px solid #a7f3d0; }
.msg[data-role="system"] .bubble { background: transparent; color: var(--_muted); font-size: 13px; padding: 2px 8px; }
.msg[data-state="pending"] .bubble { opacity: .7; }
.msg[data-state="failed"] .bubble { outline: 2px solid #ef4444; }
.msg[data-streaming="true"] .content > :last-child::after {
  content: "▍"; animation: blink 1s steps(2) infinite; margin-left: 1px;
}
@keyframes blink { 50% { opacity: 0; } }
.content > :first-child { margin-top: 0; }
.content > :last-child { margin-bottom: 0; }
.content p, .content ul, .content ol, .content pre, .content blockquote { margin: 0 0 .5em; }
.content ul, .content ol { padding-left: 1.3em; }
.content h1, .content h2, .content h3, .content h4, .content h5, .content h6 { font-size: 1em; margin: .3em 0; }
.content code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; background: rgba(0,0,0,.06); padding: 0 .25em; border-radius: 4px; }
.content pre { background: rgba(0,0,0,.06); padding: 8px; border-radius: 8px; overflow-x: auto; }
.content pre code { background: none; padding: 0; }
.content blockquote { border-left: 3px solid var(--_border); padding-left: 8px; color: var(--_muted); }
.content table { border-collapse: collapse; }
.content th, .content td { border: 1px solid var(--_border); padding: 2px 6px; }
.content a, .citations a { color: var(--_accent); }
.citations { margin: 6px 0 0; padding: 6px 0 0; border-top: 1px solid var(--_border); list-style: none; font-size: 13px; }
.citations li { margin: 2px 0; }
.note { font-size: 12px; color: var(--_muted); margin: 2px 4px 0; display: flex; gap: 8px; align-items: center; }
.note button { border: 0; background: none; color: var(--_accent); text-decoration: underline; padding: 0; font-size: 12px; }
.actions { display: flex; gap: 4px; margin-top: 4px; }
.action-confirm { display: flex; gap: 8px; margin: 6px 0 2px; align-items: center; font-size: 13px; color: var(--_muted); }
.action-confirm button { border: 1px solid var(--_accent); border-radius: 8px; padding: 5px 12px; font: inherit; cursor: pointer; background: none; color: var(--_accent); }
.action-confirm button[data-testid="action-confirm"] { background: var(--_accent); color: var(--_accent-text); }
.actions button {
  border: 1px solid var(--_border); background: var(--_bg); border-radius: 8px;
  width: 30px; height: 26px; display: grid; place-items: center; padding: 0;
}
.actions button svg { width: 15px; height: 15px; }
.actions button[aria-pressed="true"] { background: var(--_accent); color: var(--_accent-text); border-color: var(--_accent); }

.typing { padding: 0 16px 6px; font-size: 13px; color: var(--_muted); font-style: italic; }
.error { margin: 0 12px 8px; padding: 8px 10px; border-radius: 8px; background: #fee2e2; color: #7f1d1d; font-size: 13px; }

.csat { margin: 0 12px 10px; padding: 10px 12px; border: 1px solid var(--_border); border-radius: 10px; background: var(--_bg); }
.csat fieldset { border: 0; margin: 0; padding: 0; }
.csat legend { font-size: 14px; font-weight: 600; padding: 0; margin-bottom: 6px; }
.scores { display: flex; gap: 6px; margin-bottom: 8px; }
.scores button {
  flex: 1; height: 34px; border-radius: 8px; border: 1px solid var(--_border); background: var(--_bg);
  font-weight: 600;
}
.scores button[aria-checked="true"] { background: var(--_accent); color: var(--_accent-text); border-color: var(--_accent); }
.csat textarea { width: 100%; min-height: 52px; resize: vertical; border: 1px solid var(--_border); border-radius: 8px; padding: 6px 8px; }
.csat .row { display: flex; gap: 8px; justify-content: flex-end; margin-top: 8px; }
.primary { background: var(--_accent); color: var(--_accent-text); border: 0; border-radius: 8px; padding: 6px 12px; }
.secondary { background: transparent; border: 1px solid var(--_border); border-radius: 8px; padding: 6px 12px; }
.thanks { font-size: 14px; margin: 0; }

.composer { display: flex; gap: 8px; align-items: flex-end; padding: 10px 12px; border-top: 1px solid var(--_border); }
.composer textarea {
  flex: 1; resize: none; border: 1px solid var(--_border); border-radius: 10px; padding: 8px 10px;
  max-height: 140px; min-height: 40px; background: var(--_bg); line-height: 1.4;
}
.send {
  width: 40px; height: 40px; border-radius: 10px; border: 0; flex: none;
  background: var(--_accent); color: var(--_accent-text); display: grid; place-items: center;
}
.send svg { width: 20px; height: 20px; }
footer { display: flex; justify-content: space-between; align-items: center; padding: 0 12px 8px; font-size: 12px; color: var(--_muted); }
.link { border: 0; background: none; padding: 0; color: var(--_accent); text-decoration: underline; font-size: 12px; }

@media (max-width: 480px) {
  :host { right: 12px; bottom: 12px; }
  :host([data-position="left"]) { right: auto; left: 12px; }
  .panel {
    position: fixed; inset: 0; width: 100vw; height: 100vh; height: 100dvh;
    border-radius: 0; border: 0;
  }
  :host([data-open]) .launcher { display: none; }
  .msg { max-width: 92%; }
  .handoff { font-size: 12px; padding: 4px 8px; max-width: 48vw; overflow: hidden; text-overflow: ellipsis; }
}
@media (prefers-reduced-motion: reduce) {
  .msg[data-streaming="true"] .content > :last-child::after { animation: none; }
}
`;
