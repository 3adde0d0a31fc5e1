// A schedule as a short token: the task chosen at each decision, run-length encoded, one
// letter per task id (a-z for ids 0-25, A-Z for 26-51) followed by a repeat count when it is
// more than one. "a3ba12" runs task 0 for three steps, task 1 for one, then task 0 for
// twelve. Every decision is listed, forced ones too, so a token replays exactly whatever the
// ready sets (replay.ts); past its end the default policy goes on.

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** The token of a decision list. */
export function encodeSchedule(choices: readonly number[]): string {
  let out = '';
  for (let i = 0; i < choices.length; ) {
    const id = choices[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= LETTERS.length) throw new RangeError(`task id ${id} cannot be encoded (0..${LETTERS.length - 1})`);
    let j = i + 1;
    while (j < choices.length && choices[j] === id) j++;
    out += LETTERS[id]! + (j - i > 1 ? String(j - i) : '');
    i = j;
  }
  return out;
}

/** The decision list of a token; a SyntaxError names the first bad character. */
export function decodeSchedule(token: string): number[] {
  const out: number[] = [];
  if (typeof token !== 'string') throw new SyntaxError('a schedule token is a string');
  let i = 0;
  while (i < token.length) {
    const id = LETTERS.indexOf(token[i]!);
    if (id < 0) throw new SyntaxError(`bad schedule token: '${token[i]}' at ${i} is not a task letter`);
    i++;
    let n = 0;
    let digits = 0;
    while (i < token.length && token[i]! >= '0' && token[i]! <= '9') {
      n = n * 10 + (token.charCodeAt(i) - 48);
      i++;
      digits++;
      if (n > 1e7) throw new SyntaxError('bad schedule token: a repeat count is too large');
    }
    if (digits > 0 && n < 2) throw new SyntaxError(`bad schedule token: repeat count ${n} at ${i - digits}`);
    for (let k = 0; k < (digits ? n : 1); k++) out.push(id);
  }
  return out;
}

/** The letter a task id prints as in tokens and traces. */
export function taskLetter(id: number): string {
  return LETTERS[id] ?? `#${id}`;
}
