import { OutputChannel, isObject, splitText, type Button, type Element, type SendOptions } from 'switchboard';

/** A message's `text` is kept to 4,096 characters (what a person can type into one Chat message); the rest continues in text cards. */
export const TEXT_LIMIT = 4096;

/** Google Chat's limit on a whole message, text and cards: 32,000 bytes (Chat API, `spaces.messages.create`). */
export const MESSAGE_LIMIT_BYTES = 32_000;

type Json = Record<string, unknown>;

/** A card of a message's `cardsV2` (https://developers.google.com/workspace/chat/api/reference/rest/v1/cards). */
export interface CardV2 {
  cardId?: string;
  card: Json;
}

/** A card of one section holding these widgets. */
export function card(widgets: Json[], header?: Json): CardV2 {
  return { card: { ...(header ? { header } : {}), ...(widgets.length > 0 ? { sections: [{ widgets }] } : {}) } };
}

/** A text as a card widget: how text is shown once cards have begun, so the answers keep their order. */
export function textCard(text: string): CardV2 {
  return card([{ textParagraph: { text } }]);
}

/**
 * A Rasa button as a Chat button: a link (`url`) opens it; anything else invokes the button's payload as its
 * `function`, which Chat sends back in the `CARD_CLICKED` event (`action.actionMethodName`), as Rasa's card buttons do.
 */
export function chatButton(button: Button): Json {
  if (typeof button.url === 'string' && button.url !== '') return { text: button.title, onClick: { openLink: { url: button.url } } };
  return { text: button.title, onClick: { action: { function: String(button.payload ?? button.title) } } };
}

/** The widgets of a text with buttons: the text (when there is one), then the buttons in one row. */
export function buttonWidgets(text: string, buttons: readonly Button[]): Json[] {
  return [...(text.trim() === '' ? [] : [{ textParagraph: { text } }]), ...(buttons.length > 0 ? [{ buttonList: { buttons: buttons.map(chatButton) } }] : [])];
}

/** A Rasa element (`{title, subtitle, image_url, buttons}`) as a card: a header, its image, its buttons. */
export function elementCard(element: Element): CardV2 {
  const header: Json = { title: element.title };
  if (typeof element.subtitle === 'string' && element.subtitle !== '') header.subtitle = element.subtitle;
  const widgets: Json[] = [];
  if (typeof element.image_url === 'string' && element.image_url !== '') widgets.push({ image: { imageUrl: element.image_url, altText: element.title } });
  widgets.push(...buttonWidgets('', element.buttons ?? []));
  return card(widgets, header);
}

type Part = { text: string } | { card: CardV2 };

/**
 * Collects a message's answers into the one Chat message the HTTP response carries (Chat takes the app's answer to an
 * event synchronously, as Rasa's channel gives it): texts, while no card came before them, joined into `text` (at
 * blank lines, as the bot wrote them); images, buttons and elements as `cardsV2`; a text after a card becomes a text
 * card, so the answers keep their order. Custom JSON is a Chat message merged in (its `text` and cards appended,
 * other fields — `actionResponse`, `privateMessageViewer` — set).
 */
export class HangoutsOutput extends OutputChannel {
  private readonly parts: Part[] = [];
  /** Legacy `cards` (v1) a custom answer carries: passed on as they are. */
  private readonly legacyCards: unknown[] = [];
  private fields: Json = {};

  override name(): string {
    return 'hangouts';
  }

  async sendTextMessage(_recipientId: string, text: string, _options?: SendOptions): Promise<void> {
    this.parts.push({ text });
  }

  override async sendImageUrl(_recipientId: string, image: string): Promise<void> {
    this.parts.push({ card: card([{ image: { imageUrl: image } }]) });
  }

  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    if (buttons.length === 0) {
      if (text.trim() !== '') await this.sendTextMessage(recipientId, text, options);
      return;
    }
    this.parts.push({ card: card(buttonWidgets(text, buttons)) });
  }

  override async sendElements(_recipientId: string, elements: Element[]): Promise<void> {
    for (const element of elements) this.parts.push({ card: elementCard(element) });
  }

  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    if (!isObject(json)) {
      await super.sendCustomJson(recipientId, json, options);
      return;
    }
    const { text, cardsV2, cards, ...fields } = json;
    if (typeof text === 'string' && text.trim() !== '') this.parts.push({ text });
    if (Array.isArray(cardsV2)) for (const item of cardsV2) if (isObject(item) && isObject(item.card)) this.parts.push({ card: item as unknown as CardV2 });
    if (Array.isArray(cards)) this.legacyCards.push(...cards);
    this.fields = { ...this.fields, ...fields };
  }

  /** True when nothing was answered: the response is then `{}`, which Chat takes as "no message". */
  get empty(): boolean {
    return this.parts.length === 0 && this.legacyCards.length === 0 && Object.keys(this.fields).length === 0;
  }

  /** The Chat message answering the event. */
  message(): Json {
    const texts: string[] = [];
    const cards: CardV2[] = [];
    for (const part of this.parts) {
      if ('text' in part) {
        if (cards.length === 0) texts.push(part.text);
        else cards.push(textCard(part.text));
      } else {
        cards.push(part.card);
      }
    }
    const [text, ...overflow] = splitText(texts.join('\n\n'), TEXT_LIMIT);
    cards.unshift(...overflow.map(textCard));
    const message: Json = { ...this.fields };
    if (text !== undefined && text !== '') message.text = text;
    // Chat needs a `cardId` as soon as a message has two cards; the bot's own ids are kept.
    if (cards.length > 0) message.cardsV2 = cards.map((item, index) => ({ cardId: typeof item.cardId === 'string' && item.cardId !== '' ? item.cardId : `card-${index + 1}`, card: item.card }));
    if (this.legacyCards.length > 0) message.cards = [...this.legacyCards];
    return message;
  }
}
