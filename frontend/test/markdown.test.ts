import { describe, expect, it } from 'vitest';
import { escapeHtml, isSafeUrl, renderMarkdown } from '../src/markdown';

function dom(html: string): HTMLElement {
  const d = document.createElement('div');
  d.innerHTML = html;
  return d;
}

describe('renderMarkdown', () => {
  it('renders the basic formatting', () => {
    const d = dom(renderMarkdown('**bold** _it_ `code`\n\n- a\n- b\n\n1. one\n2. two'));
    expect(d.querySelector('strong')?.textContent).toBe('bold');
    expect(d.querySelector('em')?.textContent).toBe('it');
    expect(d.querySelector('code')?.textContent).toBe('code');
    expect(d.querySelectorAll('ul li')).toHaveLength(2);
    expect(d.querySelectorAll('ol li')).toHaveLength(2);
    expect(d.querySelectorAll('p').length).toBeGreaterThan(0);
  });

  it('renders fenced code blocks with their content escaped', () => {
    const d = dom(renderMarkdown('```\n<b>x</b>\n```'));
    expect(d.querySelector('pre code')?.textContent).toContain('<b>x</b>');
    expect(d.querySelector('b')).toBeNull();
  });

  it('makes links safe: target _blank + rel noopener noreferrer nofollow', () => {
    const d = dom(renderMarkdown('[docs](https://example.com/a) and <https://example.org> and [m](mailto:a@b.c)'));
    const links = Array.from(d.querySelectorAll('a'));
    expect(links).toHaveLength(3);
    for (const a of links) {
      expect(a.getAttribute('target')).toBe('_blank');
      expect(a.getAttribute('rel')).toBe('noopener noreferrer nofollow');
    }
    expect(links[0]!.getAttribute('href')).toBe('https://example.com/a');
  });

  it('drops dangerous link schemes', () => {
    for (const src of [
      '[x](javascript:alert(1))',
      '[x](JAVASCRIPT:alert(1))',
      '[x](data:text/html;base64,PHNjcmlwdD4=)',
      '[x](vbscript:msgbox)',
      '[x](/relative/path)',
    ]) {
      const d = dom(renderMarkdown(src));
      const a = d.querySelector('a');
      if (a) expect(a.hasAttribute('href'), src).toBe(false);
    }
  });

  it('shows raw HTML as text instead of interpreting it', () => {
    const html = renderMarkdown('hi <script>alert(1)</script> <img src=x onerror=alert(1)> <b onclick="x()">b</b>');
    const d = dom(html);
    expect(d.querySelector('script')).toBeNull();
    expect(d.querySelector('img')).toBeNull();
    expect(d.querySelector('[onclick]')).toBeNull();
    expect(d.querySelector('[onerror]')).toBeNull();
    expect(d.textContent).toContain('<script>alert(1)</script>');
  });

  it('turns images into plain links and never loads them', () => {
    const d = dom(renderMarkdown('![logo](https://example.com/x.png) ![bad](javascript:alert(1))'));
    expect(d.querySelector('img')).toBeNull();
    expect(d.querySelector('a')?.getAttribute('href')).toBe('https://example.com/x.png');
    expect(d.querySelectorAll('a')).toHaveLength(1);
  });

  it('survives partial markdown while streaming', () => {
    expect(() => renderMarkdown('**unfinished [link](http')).not.toThrow();
    expect(renderMarkdown('')).toBe('');
  });
});

describe('helpers', () => {
  it('escapeHtml escapes the five characters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
  it('isSafeUrl allows only http(s)/mailto', () => {
    expect(isSafeUrl('https://a.b')).toBe(true);
    expect(isSafeUrl('http://a.b')).toBe(true);
    expect(isSafeUrl('mailto:x@y.z')).toBe(true);
    expect(isSafeUrl('java\nscript:alert(1)')).toBe(false);
    expect(isSafeUrl(' javascript:alert(1)')).toBe(false);
    expect(isSafeUrl('ftp://x')).toBe(false);
    expect(isSafeUrl('')).toBe(false);
    expect(isSafeUrl(null)).toBe(false);
  });
});
