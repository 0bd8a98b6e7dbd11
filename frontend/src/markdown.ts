/**
 * Safe Markdown rendering for assistant / agent messages.
 *
 * Two layers of defence:
 *  1. marked is configured so raw HTML in the markdown source is *escaped*
 *     (shown as text), never passed through;
 *  2. the generated HTML is run through DOMPurify with a small allow-list of
 *     tags and attributes. Links keep only http(s)/mailto hrefs and always get
 *     target=_blank rel="noopener noreferrer nofollow". Images are dropped
 *     (no tracking pixels, no layout surprises).
 */
import { Marked } from 'marked';
import DOMPurify from 'dompurify';

const ALLOWED_TAGS = [
  'p', 'br', 'strong', 'em', 'b', 'i', 'del', 's', 'code', 'pre', 'a',
  'ul', 'ol', 'li', 'blockquote', 'hr', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
  'table', 'thead', 'tbody', 'tr', 'th', 'td',
];
const ALLOWED_ATTR = ['href', 'title', 'target', 'rel', 'start'];

const SAFE_URL = /^(?:https?:|mailto:)/i;

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** True for absolute http(s) and mailto URLs; everything else is refused. */
export function isSafeUrl(url: string | null | undefined): url is string {
  if (!url) return false;
  // Strip whitespace / control chars browsers ignore inside schemes ("java\nscript:").
  // eslint-disable-next-line no-control-regex
  const cleaned = url.replace(/[\u0000-\u0020\u007f]/g, '');
  return SAFE_URL.test(cleaned);
}

const marked = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    // Raw HTML blocks and inline tags in the source are shown as text.
    html({ text }) {
      return escapeHtml(text);
    },
    // Images become plain links (still subject to the URL allow-list below).
    image({ href, text }) {
      return isSafeUrl(href)
        ? `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`
        : escapeHtml(text);
    },
  },
});

let purifier: ReturnType<typeof DOMPurify> | null = null;

function getPurifier(): ReturnType<typeof DOMPurify> {
  if (purifier) return purifier;
  const p = DOMPurify(window);
  p.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName === 'A') {
      const el = node as Element;
      const href = el.getAttribute('href');
      if (!isSafeUrl(href)) {
        el.removeAttribute('href');
      } else {
        el.setAttribute('target', '_blank');
        el.setAttribute('rel', 'noopener noreferrer nofollow');
      }
    }
  });
  purifier = p;
  return p;
}

/** Render untrusted markdown to a sanitised HTML string. */
export function renderMarkdown(source: string): string {
  const html = marked.parse(source ?? '') as string;
  return getPurifier().sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
    // Only our own allow-list check decides about URLs.
    ALLOWED_URI_REGEXP: SAFE_URL,
  }) as string;
}
