/**
 * String catalog for the widget. Every user-visible string lives here.
 * Add a language by adding a full catalog object; `Catalog` makes the
 * compiler check that no key is missing.
 */

const en = {
  title: 'Support',
  openChat: 'Open support chat',
  closeChat: 'Close chat',
  unread: '{count} unread',
  chatLog: 'Conversation',
  inputLabel: 'Type your message',
  inputPlaceholder: 'Type your message…',
  send: 'Send',
  talkToPerson: 'Talk to a person',
  you: 'You',
  assistant: 'Assistant',
  agent: 'Agent',
  system: 'Notice',
  pending: 'Sending…',
  failed: 'Not delivered',
  retry: 'Retry',
  interrupted: 'Answer interrupted',
  sources: 'Sources',
  helpful: 'Helpful',
  notHelpful: 'Not helpful',
  feedbackThanks: 'Thanks for the feedback',
  confirmAction: 'Confirm',
  declineAction: 'No, leave it',
  actionWorking: 'Working on it…',
  actionAnswered: 'Answered',
  actionDone: 'Confirmed',
  actionDeclined: 'Not done',
  actionFailed: 'Could not be done',
  assistantTyping: 'Assistant is typing…',
  agentTyping: 'An agent is typing…',
  namedTyping: '{name} is typing…',
  waitingForHuman: 'Waiting for a person…',
  agentJoined: '{name} joined the conversation',
  anAgent: 'An agent',
  withAgent: 'You are chatting with a person',
  resolved: 'This conversation has been resolved',
  connecting: 'Connecting…',
  teamAway: 'Team away',
  teamBack: 'Team away · back {when}',
  online: 'Online',
  offline: 'Offline — reconnecting…',
  unavailable: 'Chat is unavailable',
  rateLimited: 'Too many requests — retrying shortly…',
  queued: 'Your message will be sent when the connection is back.',
  rateConversation: 'Rate this conversation',
  csatQuestion: 'How satisfied are you with this conversation?',
  csatScore: '{score} out of 5',
  csatComment: 'Comment (optional)',
  csatSubmit: 'Send rating',
  csatCancel: 'Not now',
  csatThanks: 'Thank you for your rating!',
  errorGeneric: 'Something went wrong.',
  suggestions: 'Suggested questions',
  poweredBy: 'SupportAI',
};

export type MessageKey = keyof typeof en;
export type Catalog = Record<MessageKey, string>;

const de: Catalog = {
  title: 'Support',
  openChat: 'Support-Chat öffnen',
  closeChat: 'Chat schließen',
  unread: '{count} ungelesen',
  chatLog: 'Unterhaltung',
  inputLabel: 'Nachricht eingeben',
  inputPlaceholder: 'Nachricht eingeben…',
  send: 'Senden',
  talkToPerson: 'Mit einem Menschen sprechen',
  you: 'Sie',
  assistant: 'Assistent',
  agent: 'Mitarbeiter',
  system: 'Hinweis',
  pending: 'Wird gesendet…',
  failed: 'Nicht zugestellt',
  retry: 'Erneut senden',
  interrupted: 'Antwort unterbrochen',
  sources: 'Quellen',
  helpful: 'Hilfreich',
  notHelpful: 'Nicht hilfreich',
  feedbackThanks: 'Danke für Ihr Feedback',
  confirmAction: 'Bestätigen',
  declineAction: 'Nein, lieber nicht',
  actionWorking: 'Wird erledigt…',
  actionAnswered: 'Beantwortet',
  actionDone: 'Bestätigt',
  actionDeclined: 'Nicht ausgeführt',
  actionFailed: 'Nicht möglich',
  assistantTyping: 'Der Assistent schreibt…',
  agentTyping: 'Ein Mitarbeiter schreibt…',
  namedTyping: '{name} schreibt…',
  waitingForHuman: 'Warten auf einen Mitarbeiter…',
  agentJoined: '{name} ist der Unterhaltung beigetreten',
  anAgent: 'Ein Mitarbeiter',
  withAgent: 'Sie chatten mit einem Menschen',
  resolved: 'Diese Unterhaltung wurde abgeschlossen',
  connecting: 'Verbindung wird hergestellt…',
  teamAway: 'Team nicht erreichbar',
  teamBack: 'Team nicht erreichbar · zurück {when}',
  online: 'Online',
  offline: 'Offline – neue Verbindung wird aufgebaut…',
  unavailable: 'Der Chat ist nicht verfügbar',
  rateLimited: 'Zu viele Anfragen – neuer Versuch in Kürze…',
  queued: 'Ihre Nachricht wird gesendet, sobald die Verbindung wieder besteht.',
  rateConversation: 'Unterhaltung bewerten',
  csatQuestion: 'Wie zufrieden sind Sie mit dieser Unterhaltung?',
  csatScore: '{score} von 5',
  csatComment: 'Kommentar (optional)',
  csatSubmit: 'Bewertung senden',
  csatCancel: 'Nicht jetzt',
  csatThanks: 'Vielen Dank für Ihre Bewertung!',
  errorGeneric: 'Etwas ist schiefgelaufen.',
  suggestions: 'Vorgeschlagene Fragen',
  poweredBy: 'SupportAI',
};

const fr: Catalog = {
  title: 'Assistance',
  openChat: 'Ouvrir le chat d’assistance',
  closeChat: 'Fermer le chat',
  unread: '{count} non lu(s)',
  chatLog: 'Conversation',
  inputLabel: 'Saisissez votre message',
  inputPlaceholder: 'Saisissez votre message…',
  send: 'Envoyer',
  talkToPerson: 'Parler à une personne',
  you: 'Vous',
  assistant: 'Assistant',
  agent: 'Conseiller',
  system: 'Information',
  pending: 'Envoi…',
  failed: 'Non remis',
  retry: 'Réessayer',
  interrupted: 'Réponse interrompue',
  sources: 'Sources',
  helpful: 'Utile',
  notHelpful: 'Pas utile',
  feedbackThanks: 'Merci pour votre avis',
  confirmAction: 'Confirmer',
  declineAction: 'Non, laisser',
  actionWorking: 'En cours…',
  actionAnswered: 'Répondu',
  actionDone: 'Confirmé',
  actionDeclined: 'Non effectué',
  actionFailed: 'Impossible',
  assistantTyping: 'L’assistant écrit…',
  agentTyping: 'Un conseiller écrit…',
  namedTyping: '{name} écrit…',
  waitingForHuman: 'En attente d’une personne…',
  agentJoined: '{name} a rejoint la conversation',
  anAgent: 'Un conseiller',
  withAgent: 'Vous discutez avec une personne',
  resolved: 'Cette conversation est terminée',
  connecting: 'Connexion…',
  teamAway: 'Équipe absente',
  teamBack: 'Équipe absente · de retour {when}',
  online: 'En ligne',
  offline: 'Hors ligne — reconnexion…',
  unavailable: 'Le chat n’est pas disponible',
  rateLimited: 'Trop de demandes — nouvel essai sous peu…',
  queued: 'Votre message sera envoyé dès le retour de la connexion.',
  rateConversation: 'Évaluer cette conversation',
  csatQuestion: 'Êtes-vous satisfait de cette conversation ?',
  csatScore: '{score} sur 5',
  csatComment: 'Commentaire (facultatif)',
  csatSubmit: 'Envoyer l’évaluation',
  csatCancel: 'Pas maintenant',
  csatThanks: 'Merci pour votre évaluation !',
  errorGeneric: 'Une erreur s’est produite.',
  suggestions: 'Questions suggérées',
  poweredBy: 'SupportAI',
};

const es: Catalog = {
  title: 'Soporte',
  openChat: 'Abrir el chat de soporte',
  closeChat: 'Cerrar el chat',
  unread: '{count} sin leer',
  chatLog: 'Conversación',
  inputLabel: 'Escribe tu mensaje',
  inputPlaceholder: 'Escribe tu mensaje…',
  send: 'Enviar',
  talkToPerson: 'Hablar con una persona',
  you: 'Tú',
  assistant: 'Asistente',
  agent: 'Agente',
  system: 'Aviso',
  pending: 'Enviando…',
  failed: 'No entregado',
  retry: 'Reintentar',
  interrupted: 'Respuesta interrumpida',
  sources: 'Fuentes',
  helpful: 'Útil',
  notHelpful: 'No es útil',
  feedbackThanks: 'Gracias por tu opinión',
  confirmAction: 'Confirmar',
  declineAction: 'No, déjalo',
  actionWorking: 'Un momento…',
  actionAnswered: 'Respondido',
  actionDone: 'Confirmado',
  actionDeclined: 'No realizado',
  actionFailed: 'No se pudo hacer',
  assistantTyping: 'El asistente está escribiendo…',
  agentTyping: 'Un agente está escribiendo…',
  namedTyping: '{name} está escribiendo…',
  waitingForHuman: 'Esperando a una persona…',
  agentJoined: '{name} se ha unido a la conversación',
  anAgent: 'Un agente',
  withAgent: 'Estás hablando con una persona',
  resolved: 'Esta conversación se ha resuelto',
  connecting: 'Conectando…',
  teamAway: 'Equipo ausente',
  teamBack: 'Equipo ausente · vuelve {when}',
  online: 'En línea',
  offline: 'Sin conexión — reconectando…',
  unavailable: 'El chat no está disponible',
  rateLimited: 'Demasiadas solicitudes — reintentando en breve…',
  queued: 'Tu mensaje se enviará cuando vuelva la conexión.',
  rateConversation: 'Valorar esta conversación',
  csatQuestion: '¿Qué tan satisfecho estás con esta conversación?',
  csatScore: '{score} de 5',
  csatComment: 'Comentario (opcional)',
  csatSubmit: 'Enviar valoración',
  csatCancel: 'Ahora no',
  csatThanks: '¡Gracias por tu valoración!',
  errorGeneric: 'Algo salió mal.',
  suggestions: 'Preguntas sugeridas',
  poweredBy: 'SupportAI',
};

export const catalogs: Record<string, Catalog> = { en, de, fr, es };
export const DEFAULT_LANGUAGE = 'en';

/** Normalise a language tag ("de-AT", "DE_de") to its primary subtag ("de"). */
function primary(tag: string | null | undefined): string {
  return (tag || '').trim().toLowerCase().split(/[-_]/)[0] ?? '';
}

/**
 * Pick the UI language: the explicit data-language wins if we have a catalog
 * for it (and the widget key allows it), otherwise the first such browser
 * language, otherwise the key's fallback (the tenant's default), else English.
 */
export function resolveLanguage(
  explicit: string | null | undefined,
  browserLanguages: readonly string[] = [],
  allowed: readonly string[] | null = null,
  fallback: string | null = null,
): string {
  const ok = (lang: string) => lang in catalogs && (!allowed || !allowed.length || allowed.includes(lang));
  const wanted = [explicit, ...browserLanguages].map(primary).filter(Boolean);
  for (const lang of wanted) if (ok(lang)) return lang;
  if (fallback && ok(fallback)) return fallback;
  return allowed?.find(ok) ?? DEFAULT_LANGUAGE;
}

export type Translate = (key: MessageKey, params?: Record<string, string | number>) => string;

/** Build a translate function for a language; unknown keys fall back to English. */
export function translator(lang: string): Translate {
  const catalog = catalogs[lang] ?? en;
  return (key, params) => {
    const template = catalog[key] ?? en[key] ?? key;
    if (!params) return template;
    return template.replace(/\{(\w+)\}/g, (m, name: string) =>
      name in params ? String(params[name]) : m,
    );
  };
}
