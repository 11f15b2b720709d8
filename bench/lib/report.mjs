// report.mjs - from raw measurements to summaries, the terminal/markdown table, the bars the
// issues set (met or missed), and the chart (vega-lite, rendered to SVG in Node, no browser).
import { summary, cell, fmt } from './stats.mjs';
import { IMPLS } from './ctx.mjs';

const ORDER = ['c', 'myriad', 'myriad-net', 'node'];
const SHORT = { c: 'C epoll', myriad: 'myriad', 'myriad-net': 'myriad/net', node: 'node:net' };

/** { 'scenario/case/metric': { impl: summary } } from [{ scenario, case, impl, result }]. */
export function summarize(measurements, scenarios) {
  const out = {};
  for (const sc of scenarios) {
    for (const m of sc.metrics) {
      const cases = m.case ? [m.case] : [...new Set(measurements.filter((x) => x.scenario === sc.name).map((x) => x.case))];
      for (const k of cases) {
        const key = `${sc.name}/${k}/${m.key}`;
        const byImpl = {};
        for (const impl of ORDER) {
          // Noisy measurements (other processes used the CPU meanwhile) count only when there is no clean one.
          const ok = measurements.filter((x) => x.scenario === sc.name && x.case === k && x.impl === impl && x.ok);
          const clean = ok.filter((x) => !x.noisy);
          const vals = (clean.length ? clean : ok).map((x) => x.result[m.key]);
          if (vals.length || measurements.some((x) => x.scenario === sc.name && x.case === k && x.impl === impl)) byImpl[impl] = summary(vals);
        }
        if (Object.keys(byImpl).length) out[key] = { scenario: sc.name, case: k, metric: m, impls: byImpl };
      }
    }
  }
  return out;
}

const ratio = (a, b) => (a?.median != null && b?.median != null && b.median !== 0 ? a.median / b.median : null);

/** Rows for the table: metric, one cell per implementation, myriad÷C and myriad÷node. */
export function tableRows(summaries) {
  const rows = [];
  for (const s of Object.values(summaries)) {
    const u = s.metric.unit === '/s' ? '' : s.metric.unit;
    const r = { scenario: s.scenario, metric: `${s.scenario}: ${s.metric.label}${s.metric.unit ? ` (${s.metric.unit})` : ''}` };
    for (const impl of ORDER) r[impl] = s.impls[impl] ? cell(s.impls[impl], '') : '';
    const rc = ratio(s.impls.myriad, s.impls.c);
    const rn = ratio(s.impls.myriad, s.impls.node);
    r.vsC = rc == null ? '' : `${rc.toFixed(2)}x`;
    r.vsNode = rn == null ? '' : `${rn.toFixed(2)}x`;
    void u;
    rows.push(r);
  }
  return rows;
}

const HEAD = ['metric', 'C epoll', 'myriad', 'myriad on net', 'node:net', 'myriad÷C', 'myriad÷node'];
const cols = (r) => [r.metric, r.c, r.myriad, r['myriad-net'], r.node, r.vsC, r.vsNode];

export function textTable(rows) {
  const all = [HEAD, ...rows.map(cols)];
  const w = HEAD.map((_, i) => Math.max(...all.map((r) => String(r[i] ?? '').length)));
  return all.map((r, k) => {
    const line = r.map((c, i) => String(c ?? '').padEnd(w[i])).join('  ').trimEnd();
    return k === 0 ? `${line}\n${w.map((n) => '-'.repeat(n)).join('  ')}` : line;
  }).join('\n');
}

export function markdownTable(rows) {
  const esc = (s) => String(s ?? '').replace(/\|/g, '\\|');
  return [`| ${HEAD.join(' | ')} |`, `|${HEAD.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${cols(r).map(esc).join(' | ')} |`)].join('\n');
}

// ---- the bars (issues 1, 3 and 6) ----
export function bars(summaries) {
  const g = (key, impl) => summaries[key]?.impls?.[impl];
  const med = (key, impl) => g(key, impl)?.median ?? null;
  const out = [];
  const add = (scenario, text, value, met, detail) => out.push({ scenario, text, value, met, detail });
  const within = (key, factor, what) => {
    const r = ratio(g(key, 'myriad'), g(key, 'c'));
    const rn = ratio(g(key, 'myriad'), g(key, 'node'));
    const sc = key.split('/')[0];
    if (r !== null) add(sc, `${what}: within ${factor}x of the C anchor`, `${r.toFixed(2)}x`, r <= factor, `myriad ${fmt(med(key, 'myriad'))} vs C ${fmt(med(key, 'c'))} ${summaries[key].metric.unit}`);
    if (rn !== null) add(sc, `${what}: below node:net`, `${rn.toFixed(2)}x`, rn < 1, `myriad ${fmt(med(key, 'myriad'))} vs node:net ${fmt(med(key, 'node'))} ${summaries[key].metric.unit}`);
  };
  if (summaries['idle/server/rss_per_conn_b']) {
    const k = 'idle/server/rss_per_conn_b';
    const r = ratio(g(k, 'myriad'), g(k, 'node'));
    if (r !== null) add('idle', 'server side: memory per idle connection at most 1/10 of node:net', `${(r * 100).toFixed(1)}%`, r <= 0.1, `${fmt(med(k, 'myriad'))} B vs ${fmt(med(k, 'node'))} B`);
    if (med(k, 'myriad') !== null) add('idle', 'server side: at most 400 B of process memory growth per idle connection (19,000 held)', `${fmt(med(k, 'myriad'))} B`, med(k, 'myriad') <= 400, '');
  }
  if (summaries['idle/dialer/rss_per_conn_b']) {
    const k = 'idle/dialer/rss_per_conn_b';
    const r = ratio(g(k, 'myriad'), g(k, 'node'));
    if (r !== null) add('idle', 'dialer side: memory per idle connection at most 1/10 of node:net', `${(r * 100).toFixed(1)}%`, r <= 0.1, `${fmt(med(k, 'myriad'))} B vs ${fmt(med(k, 'node'))} B`);
  }
  for (const side of ['server', 'dialer']) {
    const k = `idle/${side}/settled_rss_per_conn_b`;
    const r = ratio(g(k, 'myriad'), g(k, 'node'));
    if (r !== null) add('idle', `${side} side, settled (after V8 shrank its heap): at most 1/10 of node:net`, `${(r * 100).toFixed(1)}%`, r <= 0.1, `${fmt(med(k, 'myriad'))} B vs ${fmt(med(k, 'node'))} B`);
  }
  if (summaries['accept/storm/server_us_per_accept']) {
    within('accept/storm/server_us_per_accept', 1.2, 'accept: server CPU per accepted connection');
    const r = ratio(g('accept/storm/server_us_per_accept', 'myriad'), g('accept/storm/server_us_per_accept', 'c'));
    if (r !== null) add('accept', 'accept: server CPU per accepted connection within 1.25x of C (core issue)', `${r.toFixed(2)}x`, r <= 1.25, '');
    const ov = g('accept/storm/listen_overflows', 'myriad');
    if (ov?.n) add('accept', 'accept: no listen overflow under the storm at default settings', `${fmt(ov.max)} (max of runs)`, ov.max === 0, '');
  }
  if (summaries['churn/cycles/server_us_per_op']) within('churn/cycles/server_us_per_op', 1.2, 'churn: server CPU per open+close');
  if (summaries['echo/p1/server_us_per_msg']) within('echo/p1/server_us_per_msg', 1.2, 'echo pipeline 1: server CPU per message');
  if (summaries['echo/p16/server_us_per_msg']) within('echo/p16/server_us_per_msg', 1.2, 'echo pipeline 16: server CPU per message');
  if (summaries['broadcast/fanout/all_have_ms']) {
    const k = 'broadcast/fanout/all_have_ms';
    const r = ratio(g(k, 'myriad'), g(k, 'c'));
    if (r !== null) add('broadcast', 'broadcast: delivery within 1.1x of the C anchor', `${r.toFixed(2)}x`, r <= 1.1, `${fmt(med(k, 'myriad'))} ms vs ${fmt(med(k, 'c'))} ms`);
    const s = g('broadcast/fanout/send_loop_ms', 'myriad');
    if (s?.n) add('broadcast', 'broadcast: JS thread inside broadcast() at most 1 ms for 18,000 members', `${fmt(s.median)} ms (max ${fmt(s.max)})`, s.median <= 1, '');
  }
  // connect: wall time across the processes (older result files have only the slowest process's own time).
  const connectKey = summaries['connect/60k/wall_s']?.impls?.myriad?.n ? 'connect/60k/wall_s' : 'connect/60k/time_s';
  if (summaries[connectKey]) {
    const t = g(connectKey, 'myriad');
    const e = g('connect/60k/established', 'myriad');
    if (t?.n) add('connect', 'connect: connectMany opens 60,000 to one endpoint over 5 sources in at most 1.5 s', `${fmt(t.median)} s`, t.median <= 1.5 && e?.min >= 60_000, `established ${fmt(e?.min)} (min of runs)`);
    const r = ratio(t, g(connectKey, 'c'));
    if (r !== null) add('connect', 'connect: within 1.1x of the C load generator in the same run (a mark of ours, not the issue bar)', `${r.toFixed(2)}x`, r <= 1.1, `myriad ${fmt(t.median)} s vs C ${fmt(med(connectKey, 'c'))} s`);
  }
  if (summaries['wall/65k/established']) {
    const e = g('wall/65k/established', 'myriad');
    const t = g('wall/65k/time_s', 'myriad');
    const n = g('wall/65k/established', 'node');
    if (e?.n) add('wall', 'wall: myriad past 60,000 connections to one endpoint in under 1.5 s', `${fmt(e.min)} in ${fmt(t?.median)} s`, e.min > 60_000 && t?.median < 1.5, '');
    if (n?.n) add('wall', 'wall: node:net from the default source stops at the port range (EADDRNOTAVAIL)', `${fmt(n.max)}`, n.max < 60_000, '');
  }
  return out;
}

/** A vega-lite spec: one panel per charted metric, a bar per implementation (median), min..max rules. */
export function chartSpec(summaries, title) {
  const values = [];
  const panels = [];
  for (const s of Object.values(summaries)) {
    if (!s.metric.chart) continue;
    const panel = `${s.metric.chartTitle ?? `${s.scenario}: ${s.metric.label}`} ${s.metric.better === 'lower' ? '↓' : '↑'}`;
    panels.push(panel);
    for (const impl of ORDER) {
      const x = s.impls[impl];
      if (!x || x.median === null) continue;
      values.push({ panel, impl: SHORT[impl], median: x.median, min: x.min, max: x.max, label: fmt(x.median) });
    }
  }
  const implOrder = ORDER.map((i) => SHORT[i]);
  const colors = { [SHORT.c]: '#7f7f7f', [SHORT.myriad]: '#1f77b4', [SHORT['myriad-net']]: '#9ecae1', [SHORT.node]: '#ff7f0e' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: 'median of the rounds, line = min..max; ↓ lower is better, ↑ higher is better', fontSize: 15 },
    data: { values },
    facet: { field: 'panel', type: 'nominal', title: null, header: { labelFontSize: 12, labelLimit: 0 }, sort: panels },
    columns: 3,
    spec: {
      width: 300,
      height: 160,
      layer: [
        { mark: 'bar', encoding: {
          x: { field: 'impl', type: 'nominal', sort: implOrder, axis: { title: null, labelAngle: 0, labelLimit: 0 } },
          y: { field: 'median', type: 'quantitative', title: null },
          color: { field: 'impl', type: 'nominal', scale: { domain: Object.keys(colors), range: Object.values(colors) }, legend: { title: null, orient: 'top', labelExpr: "{'C epoll': 'C epoll (the practical limit)', 'myriad': 'myriad (native)', 'myriad/net': 'myriad on node:net (same code)', 'node:net': 'idiomatic node:net'}[datum.label]", labelLimit: 0 } },
        } },
        { mark: { type: 'rule', strokeWidth: 1.5 }, encoding: {
          x: { field: 'impl', type: 'nominal', sort: implOrder }, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' },
        } },
        { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: {
          x: { field: 'impl', type: 'nominal', sort: implOrder }, y: { field: 'max', type: 'quantitative' }, text: { field: 'label' },
        } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Renders the chart to an SVG string; null (with the reason) when vega is not installed. */
export async function renderChart(summaries, title) {
  let vega, vl;
  try {
    vega = await import('vega');
    vl = await import('vega-lite');
  } catch (err) {
    return { svg: null, reason: `vega/vega-lite not installed (${err.code ?? err.message}): npm i -D vega vega-lite` };
  }
  const view = new vega.View(vega.parse(vl.compile(chartSpec(summaries, title)).spec), { renderer: 'none' });
  return { svg: await view.toSVG(), reason: null };
}
