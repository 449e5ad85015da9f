/**
 * The rules bot's classifier: which example of which intent a text is most similar to (docs/rules-bot.md, "Matching").
 * Everything about the examples is computed once, when the file is loaded; per message the matcher tokenizes the text
 * once and scores only the examples that share a word (or a typo of one) with it.
 */

/** How the bot understood one text: its best intent and example, the score, and whether the score is enough. */
export interface Classification {
  /** The intent of the most similar example, or null when no example shares a word with the text. */
  intent: string | null;
  /** That example, as written in the file. */
  example: string | null;
  /** Its similarity, from 0 (nothing in common) to 1 (the same words). */
  score: number;
  /** Whether `score` reaches the threshold, so that the intent answers rather than the fallback. */
  accepted: boolean;
}

/** Function words: they count, but a quarter as much as the words that carry the meaning. */
const STOP_WORDS = new Set(
  (
    'a an the i im me my mine myself you youre your yours u we us our he she it its they them their this that these ' +
    'those there here is am are was were be been being do does did to of in on at for with from and or but so very ' +
    'just too please what how who which can could would will shall should may might must have has had ive id ill'
  ).split(' '),
);
const STOP_WEIGHT = 0.25;

/** Words that turn a sentence around: a text and an example match only if both or neither contain one. */
const NEGATIONS = new Set(
  (
    'no not never nope nah none nothing nobody neither nor cannot dont doesnt didnt isnt arent wasnt werent cant ' +
    'wont wouldnt shouldnt couldnt havent hasnt hadnt aint mustnt neednt'
  ).split(' '),
);

/** The similarity of two words that differ by one typo. */
const FUZZY_SIMILARITY = 0.8;

const MARKS = /\p{M}/gu;
const APOSTROPHES = /['’‘`´]/g;
const NOT_LETTER_OR_DIGIT = /[^\p{L}\p{N}]+/gu;

/** The general case of `tokenize`, for text with characters beyond ASCII. */
function tokenizeUnicode(text: string): string[] {
  return text
    .normalize('NFKD')
    .replace(MARKS, '')
    .toLowerCase()
    .replace(APOSTROPHES, '')
    .replace(NOT_LETTER_OR_DIGIT, ' ')
    .trim()
    .split(' ')
    .filter((token) => token !== '');
}

/** Lowercase, without diacritics and apostrophes ("I'm" → "im"), every other non-letter/digit a space; its words. */
export function tokenize(text: string): string[] {
  // Most messages are ASCII: one pass over the characters gives the same words as the general case, which needs
  // Unicode normalisation and three regular expressions.
  const tokens: string[] = [];
  let start = -1;
  let upper = false;
  let apostrophe = false;
  for (let i = 0; i <= text.length; i += 1) {
    const c = i < text.length ? text.charCodeAt(i) : 32;
    if (c >= 128) return tokenizeUnicode(text);
    const lower = c >= 97 && c <= 122;
    const isUpper = c >= 65 && c <= 90;
    const digit = c >= 48 && c <= 57;
    const isApostrophe = c === 39 || c === 96;
    if (lower || isUpper || digit || isApostrophe) {
      if (start === -1) start = i;
      upper ||= isUpper;
      apostrophe ||= isApostrophe;
    } else if (start !== -1) {
      let token = text.slice(start, i);
      if (upper) token = token.toLowerCase();
      if (apostrophe) token = token.split("'").join('').split('`').join('');
      if (token !== '') tokens.push(token);
      start = -1;
      upper = false;
      apostrophe = false;
    }
  }
  return tokens;
}

/** Whether two different strings of the same first letter are one edit apart (insertion, deletion, substitution, swap). */
function withinOneEdit(a: string, b: string): boolean {
  const la = a.length;
  const lb = b.length;
  if (la - lb > 1 || lb - la > 1) return false;
  let i = 0;
  while (i < la && i < lb && a.charCodeAt(i) === b.charCodeAt(i)) i += 1;
  if (la === lb) {
    let k = i + 1;
    while (k < la && a.charCodeAt(k) === b.charCodeAt(k)) k += 1;
    if (k >= la) return true; // substitution
    // a swap of neighbours: a[i]a[i+1] = b[i+1]b[i], the rest equal
    if (a.charCodeAt(i) !== b.charCodeAt(i + 1) || a.charCodeAt(i + 1) !== b.charCodeAt(i)) return false;
    for (k = i + 2; k < la; k += 1) if (a.charCodeAt(k) !== b.charCodeAt(k)) return false;
    return true;
  }
  // deletion/insertion: the longer without its i-th character is the shorter
  const long = la > lb ? a : b;
  const short = la > lb ? b : a;
  for (let k = i; k < short.length; k += 1) if (short.charCodeAt(k) !== long.charCodeAt(k + 1)) return false;
  return true;
}

function isPlural(a: string, b: string): boolean {
  const short = a.length < b.length ? a : b;
  const long = a.length < b.length ? b : a;
  const extra = long.length - short.length;
  if (short.length < 3 || extra < 1 || extra > 2 || !long.startsWith(short)) return false;
  return extra === 1 ? long.endsWith('s') : long.endsWith('es');
}

/** 1 for the same word or its plural, 0.8 for one typo (words of 4+ letters, same first letter), else 0. */
function wordSimilarity(a: string, b: string): number {
  if (a === b || isPlural(a, b)) return 1;
  if (a.length >= 4 && b.length >= 4 && a.charCodeAt(0) === b.charCodeAt(0) && withinOneEdit(a, b)) return FUZZY_SIMILARITY;
  return 0;
}

export interface Words {
  tokens: string[];
  weights: number[];
  total: number;
  /** The words without spaces, so that "good bye" and "goodbye" are the same. */
  joined: string;
  negated: boolean;
}

export function words(text: string): Words {
  const tokens = tokenize(text);
  const weights = new Array<number>(tokens.length);
  let total = 0;
  let negated = false;
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i]!;
    weights[i] = STOP_WORDS.has(token) ? STOP_WEIGHT : 1;
    total += weights[i]!;
    negated ||= NEGATIONS.has(token);
  }
  return { tokens, weights, total, joined: tokens.join(''), negated };
}

/** The intent named by a Rasa payload (`/greet`, `/greet{"name": "x"}`, `/greet@0.9`), or null for other text. */
export function parsePayload(text: string): string | null {
  if (text.charCodeAt(0) !== 47 /* / */) return null;
  let end = 1;
  while (end < text.length && text[end] !== '{' && text[end] !== '@') end += 1;
  return text.slice(1, end).trim();
}

interface CompiledExample {
  intent: string;
  text: string;
  words: Words;
  /** The vocabulary index of each of its words. */
  vocabulary: number[];
}

/** The examples of a rules file, compiled for matching. */
export class Matcher {
  readonly #examples: CompiledExample[] = [];
  /** Every distinct word of the examples. */
  readonly #vocabulary: string[] = [];
  /** Vocabulary indexes by first letter: a word can only be similar to a word with the same first letter. */
  readonly #byFirstLetter = new Map<string, number[]>();
  /** For each vocabulary word, the examples that contain it. */
  readonly #examplesOf: number[][] = [];
  /** Which examples share a word with the message being classified (reused: classify runs to its end synchronously). */
  #candidate = new Uint8Array(0);

  /** `intents` in the order of the file, each with its examples (every one with at least one word). */
  constructor(intents: ReadonlyArray<{ name: string; examples: readonly string[] }>) {
    const index = new Map<string, number>();
    for (const intent of intents) {
      for (const text of intent.examples) {
        const exampleWords = words(text);
        const e = this.#examples.length;
        const vocabulary = exampleWords.tokens.map((token) => {
          let v = index.get(token);
          if (v === undefined) {
            v = this.#vocabulary.length;
            index.set(token, v);
            this.#vocabulary.push(token);
            this.#examplesOf.push([]);
            const first = token[0]!;
            const group = this.#byFirstLetter.get(first);
            if (group === undefined) this.#byFirstLetter.set(first, [v]);
            else group.push(v);
          }
          const containing = this.#examplesOf[v]!;
          if (containing[containing.length - 1] !== e) containing.push(e);
          return v;
        });
        this.#examples.push({ intent: intent.name, text, words: exampleWords, vocabulary });
      }
    }
    this.#candidate = new Uint8Array(this.#examples.length);
  }

  /**
   * The example most similar to the text (ties go to the earlier example in the file). The similarity is a weighted
   * Dice coefficient over the words, where each word of the example is paired with the most similar unpaired word of
   * the text, in any order.
   */
  classify(text: string, threshold: number): Classification {
    const message = words(text);
    const n = message.tokens.length;
    let bestScore = 0;
    let best: CompiledExample | undefined;
    if (n > 0) {
      // The similarity of each vocabulary word to each word of the text, for the words where it is not 0; and which
      // examples can score above 0 at all.
      const similar = new Map<number, number[]>();
      const candidate = this.#candidate;
      candidate.fill(0);
      for (let j = 0; j < n; j += 1) {
        const token = message.tokens[j]!;
        const group = this.#byFirstLetter.get(token[0]!);
        if (group === undefined) continue;
        for (const v of group) {
          const s = wordSimilarity(this.#vocabulary[v]!, token);
          if (s === 0) continue;
          let row = similar.get(v);
          if (row === undefined) {
            row = new Array<number>(n).fill(0);
            similar.set(v, row);
            for (const e of this.#examplesOf[v]!) candidate[e] = 1;
          }
          row[j] = s;
        }
      }
      const used = new Array<boolean>(n);
      for (let e = 0; e < this.#examples.length; e += 1) {
        const example = this.#examples[e]!;
        let score: number;
        if (example.words.joined === message.joined) score = 1;
        else if (candidate[e] === 0 || example.words.negated !== message.negated) continue;
        else score = this.#score(example, message, similar, used);
        if (score > bestScore) {
          bestScore = score;
          best = example;
        }
      }
    }
    return {
      intent: best?.intent ?? null,
      example: best?.text ?? null,
      score: bestScore,
      accepted: best !== undefined && bestScore >= threshold,
    };
  }

  #score(example: CompiledExample, message: Words, similar: Map<number, number[]>, used: boolean[]): number {
    used.fill(false);
    let shared = 0;
    const { vocabulary, words: exampleWords } = example;
    for (let i = 0; i < vocabulary.length; i += 1) {
      const row = similar.get(vocabulary[i]!);
      if (row === undefined) continue;
      let best = 0;
      let bestIndex = -1;
      for (let j = 0; j < row.length; j += 1) {
        if (!used[j] && row[j]! > best) {
          best = row[j]!;
          bestIndex = j;
        }
      }
      if (bestIndex >= 0) {
        used[bestIndex] = true;
        shared += best * (exampleWords.weights[i]! + message.weights[bestIndex]!);
      }
    }
    return shared / (message.total + exampleWords.total);
  }
}
