// stats.mjs - median and spread of repeated measurements.

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const h = Math.floor(v.length / 2);
  return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

/** { median, min, max, n, values } of the finite numbers in xs. */
export function summary(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return { median: null, min: null, max: null, n: 0, values: [] };
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length, values: v };
}

/** Compact human number: 3 significant digits, thousands separated. */
export function fmt(x, unit = '') {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  let s;
  if (a >= 1000) s = Math.round(x).toLocaleString('en-US');
  else if (a >= 100) s = String(Math.round(x));
  else if (a >= 10) s = x.toFixed(1);
  else if (a >= 1) s = x.toFixed(2);
  else s = x.toPrecision(2);
  return unit ? `${s} ${unit}` : s;
}

/** "median [min..max]" */
export function cell(s, unit = '') {
  if (!s || s.median === null) return '-';
  if (s.n === 1) return fmt(s.median, unit);
  return `${fmt(s.median, unit)} [${fmt(s.min)}..${fmt(s.max)}]`;
}
