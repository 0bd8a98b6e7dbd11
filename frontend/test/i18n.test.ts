import { describe, expect, it } from 'vitest';
import { catalogs, resolveLanguage, translator } from '../src/i18n';

describe('i18n catalog', () => {
  it('has English and German with identical, non-empty keys', () => {
    expect(Object.keys(catalogs)).toEqual(expect.arrayContaining(['en', 'de']));
    const enKeys = Object.keys(catalogs.en!).sort();
    for (const [lang, cat] of Object.entries(catalogs)) {
      expect(Object.keys(cat).sort(), lang).toEqual(enKeys);
      for (const [k, v] of Object.entries(cat)) expect(v.trim(), `${lang}.${k}`).not.toBe('');
    }
  });

  it('keeps the same placeholders in every language', () => {
    const ph = (s: string) => (s.match(/\{\w+\}/g) || []).sort();
    for (const [k, v] of Object.entries(catalogs.en!)) {
      for (const lang of ['de', 'fr', 'es']) {
        expect(ph(catalogs[lang]![k as keyof typeof catalogs.en]), `${lang}.${k}`).toEqual(ph(v));
      }
    }
  });

  it('resolves data-language first, then browser languages, then en', () => {
    expect(resolveLanguage('de', ['en-US'])).toBe('de');
    expect(resolveLanguage('DE-at', [])).toBe('de');
    expect(resolveLanguage('it', ['de-CH', 'en'])).toBe('de');
    expect(resolveLanguage(null, ['pt-BR', 'fr-FR', 'de'])).toBe('fr');
    expect(resolveLanguage(undefined, ['it', 'pt'])).toBe('en');
    expect(resolveLanguage('', [])).toBe('en');
  });

  it('has English, German, French and Spanish', () => {
    expect(Object.keys(catalogs).sort()).toEqual(['de', 'en', 'es', 'fr']);
    expect(translator('fr')('send')).toBe('Envoyer');
    expect(translator('es')('send')).toBe('Enviar');
  });

  it("keeps to the widget key's languages, then the tenant's default", () => {
    expect(resolveLanguage(null, ['fr-FR', 'de'], ['de', 'es'], 'es')).toBe('de');
    expect(resolveLanguage('fr', ['en-US'], ['de', 'es'], 'es')).toBe('es');
    expect(resolveLanguage(null, ['en-US'], ['de', 'es'], 'fr')).toBe('de');
    expect(resolveLanguage(null, ['en-US'], [], 'de')).toBe('en');
    expect(resolveLanguage(null, ['it'], null, 'de')).toBe('de');
  });

  it('interpolates parameters and falls back to English for unknown languages', () => {
    expect(translator('de')('agentJoined', { name: 'Alex' })).toBe('Alex ist der Unterhaltung beigetreten');
    expect(translator('en')('agentJoined', { name: 'Alex' })).toBe('Alex joined the conversation');
    expect(translator('xx')('send')).toBe('Send');
    expect(translator('en')('csatScore', {})).toBe('{score} out of 5');
    expect(translator('en')('assistantTyping')).toBe('Assistant is typing…');
    expect(translator('en')('waitingForHuman')).toBe('Waiting for a person…');
  });
});
