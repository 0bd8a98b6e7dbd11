/**
 * Entry point of the embeddable script. Finds its own <script> tag, reads the
 * data-* configuration, appends one <supportai-chat> to the body and exposes
 * window.SupportAI = { open(), close(), element }.
 */
import { findOwnScript, readConfig } from './config';
import { SupportAIChatElement, TAG_NAME, defineElement } from './widget';

export interface SupportAIApi {
  open(): void;
  close(): void;
  element: SupportAIChatElement | null;
}

declare global {
  interface Window {
    SupportAI?: SupportAIApi;
  }
  interface HTMLElementTagNameMap {
    'supportai-chat': SupportAIChatElement;
  }
}

// document.currentScript is only set while the script first executes.
const script = findOwnScript(document);

function boot(): void {
  defineElement();
  let element = document.querySelector(TAG_NAME);
  if (!element && script) {
    const config = readConfig(script);
    if (!config) {
      console.warn('[SupportAI] <script> tag has no data-widget-key; widget not started');
    } else {
      element = document.createElement(TAG_NAME);
      element.config = config;
      document.body.appendChild(element);
    }
  }
  window.SupportAI = {
    open: () => element?.open(),
    close: () => element?.close(),
    element,
  };
  document.dispatchEvent(new CustomEvent('supportai:ready', { detail: { element } }));
}

if (!window.SupportAI) {
  if (document.body) boot();
  else document.addEventListener('DOMContentLoaded', boot, { once: true });
}
