// A small parser for the Prometheus text exposition format, enough to read the gateway's /metrics.

/** Parses text into [{ name, labels: {k: v}, value }]; comments and blank lines skipped. */
export function parseProm(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let i = 0;
    while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i])) i++;
    const name = line.slice(0, i);
    const labels = {};
    if (line[i] === '{') {
      i++;
      while (i < line.length && line[i] !== '}') {
        while (line[i] === ' ' || line[i] === ',') i++;
        if (line[i] === '}') break;
        let j = i;
        while (j < line.length && line[j] !== '=') j++;
        const key = line.slice(i, j).trim();
        j++; // =
        if (line[j] !== '"') throw new Error(`bad label value in: ${line}`);
        j++;
        let v = '';
        while (j < line.length && line[j] !== '"') {
          if (line[j] === '\\') {
            const n = line[j + 1];
            v += n === 'n' ? '\n' : n;
            j += 2;
          } else {
            v += line[j++];
          }
        }
        j++; // closing quote
        labels[key] = v;
        i = j;
      }
      i++; // }
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const value = rest[0] === '+Inf' ? Infinity : rest[0] === '-Inf' ? -Infinity : Number(rest[0]);
    out.push({ name, labels, value });
  }
  return out;
}

/** Samples of one metric name whose labels include every pair of `match`. */
export function select(samples, name, match = {}) {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** Sum of the values of the selected samples (0 when none). */
export function total(samples, name, match = {}) {
  return select(samples, name, match).reduce((a, s) => a + s.value, 0);
}
