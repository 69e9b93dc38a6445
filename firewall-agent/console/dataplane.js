// Data plane (ours): drops by reason, passes, tracked flows and hits per rule from
// GetDataplaneStatistics, polled every 2 s into a small SVG chart of packets per second.
'use strict';

const Dataplane = {
  timer: null,
  samples: [],

  stop() { if (Dataplane.timer) clearInterval(Dataplane.timer); Dataplane.timer = null; },

  async show() {
    Dataplane.samples = [];
    const body = h('div', { id: 'dataplane' });
    show(h('div', { class: 'card' }, h('h2', {}, 'Data plane'), body));
    const tick = async () => {
      try { Dataplane.draw(body, await call('GetDataplaneStatistics', {})); } catch (e) { Dataplane.stop(); failed(e); }
    };
    await tick();
    Dataplane.timer = setInterval(tick, 2000);
  },

  draw(body, stats) {
    const sum = (m) => Object.values(m || {}).reduce((a, b) => a + b, 0);
    Dataplane.samples.push({ t: Date.now(), drops: sum(stats.Drops), passes: sum(stats.Passes) });
    if (Dataplane.samples.length > 60) Dataplane.samples.shift();
    const table = (id, title, map) => h('div', { class: 'card' }, h('h3', {}, title), h('table', { id }, h('tbody', {},
      Object.entries(map || {}).map(([k, v]) => h('tr', { 'data-key': k }, h('td', {}, k), h('td', { class: 'count' }, String(v)))))));
    body.replaceChildren(
      h('p', {}, 'Tracked flows: ', h('strong', { id: 'tracked-flows' }, String(stats.TrackedFlows))),
      Dataplane.chart(),
      table('drops', 'Drops by reason', stats.Drops), table('passes', 'Passes by reason', stats.Passes),
      table('rule-hits', 'Hits per rule', stats.RuleHits));
  },

  /// Packets per second passed (green) and dropped (red) between the last samples.
  chart() {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('class', 'chart'); svg.setAttribute('id', 'dataplane-chart');
    svg.setAttribute('width', '600'); svg.setAttribute('height', '120');
    const s = Dataplane.samples;
    const rates = (key) => s.slice(1).map((p, i) => Math.max(0, (p[key] - s[i][key]) / Math.max(0.001, (p.t - s[i].t) / 1000)));
    const passes = rates('passes'), drops = rates('drops');
    const top = Math.max(1, ...passes, ...drops);
    for (const [series, color] of [[passes, '#1d8102'], [drops, '#d13212']]) {
      const line = document.createElementNS(ns, 'polyline');
      line.setAttribute('fill', 'none'); line.setAttribute('stroke', color);
      line.setAttribute('points', series.map((v, i) => `${i * 10},${115 - (v / top) * 110}`).join(' '));
      svg.append(line);
    }
    return svg;
  },
};
