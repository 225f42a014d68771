/*
 * obs gateway status page.  Polls /status.json every snapshot interval and
 * builds the page with DOM calls only: every label value becomes a text
 * node (never markup), links are built from the configured base addresses
 * with encoded parts.  No framework, no external asset.
 */
'use strict';

(function () {
  const SVG = 'http://www.w3.org/2000/svg';
  const FAST_BURN = 14.4;   /* the alert rules' page-now burn rate */

  const state = {
    route: '',
    tenant: '',
    tables: {
      routes: { sort: 'rate', order: 'desc', offset: 0, limit: 50 },
      tenants: { sort: 'rate', order: 'desc', offset: 0, limit: 10 },
      business: { sort: 'metric', order: 'asc', offset: 0, limit: 20 },
    },
    data: null,
    timer: 0,
    seq: 0,
  };

  /* --- DOM helpers: text is always a text node ------------------------ */

  function el(tag, props, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined) continue;
      if (k === 'class') e.className = v;
      else if (k === 'data') Object.assign(e.dataset, v);
      else e.setAttribute(k, String(v));
    }
    for (const c of [].concat(children === undefined ? [] : children)) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }

  /* a link only to http(s) addresses: the settings are checked too */
  function safeUrl(u) {
    return typeof u === 'string' && /^https?:\/\/[^\s]+$/i.test(u) ? u : null;
  }

  function link(href, text, title) {
    return el('a', { href: href, target: '_blank',
                     rel: 'noopener noreferrer', title: title }, text);
  }

  /* --- numbers ------------------------------------------------------- */

  const isNum = (v) => typeof v === 'number' && isFinite(v);

  function fmtCount(v) {
    if (!isNum(v)) return '–';
    return v.toLocaleString('en-US');
  }

  function fmtRate(v) {
    if (!isNum(v)) return '–';
    if (v === 0) return '0';
    if (v < 0.01) return v.toExponential(1);
    return v < 10 ? v.toFixed(2) : v < 1000 ? v.toFixed(1)
           : Math.round(v).toLocaleString('en-US');
  }

  function fmtPct(v) {
    if (!isNum(v)) return '–';
    const p = v * 100;
    if (p === 0) return '0%';
    if (p === 100) return '100%';
    return (p < 0.01 ? p.toExponential(1) : p < 10 ? p.toFixed(2)
            : p.toFixed(1)) + '%';
  }

  /* three significant digits, without trailing zeros after the point */
  function digits3(v) {
    const s = v.toPrecision(3);
    return s.indexOf('.') < 0 || /e/.test(s) ? s
           : s.replace(/0+$/, '').replace(/\.$/, '');
  }

  function fmtSec(v) {
    if (!isNum(v)) return '–';
    if (v < 1e-3) return (v * 1e6).toFixed(0) + ' µs';
    if (v < 1) return digits3(v * 1e3) + ' ms';
    return digits3(v) + ' s';
  }

  function fmtBytes(v) {
    if (!isNum(v)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v) + ' ' + units[i];
  }

  function fmtAge(t, now) {
    if (!isNum(t) || t <= 0) return 'never';
    const s = Math.max(0, now - t);
    if (s < 90) return Math.round(s) + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    return Math.round(s / 3600) + ' h ago';
  }

  /* --- colours against the SLOs -------------------------------------- */

  /* ok within the error budget, warn up to the fast-burn rate, bad above */
  function budgetClass(badShare, objective) {
    if (!isNum(badShare)) return '';
    const budget = 1 - objective;
    if (badShare <= budget) return 'ok';
    return badShare <= FAST_BURN * budget ? 'warn' : 'bad';
  }

  function availabilityClass(ratio5xx, slo) {
    return budgetClass(ratio5xx, slo.availability);
  }

  function latencyClass(good, slo) {
    return isNum(good) ? budgetClass(1 - good, slo.latency_objective) : '';
  }

  function thresholdClass(seconds, good, slo) {
    if (!isNum(seconds)) return '';
    return seconds <= slo.latency_threshold_seconds ? 'ok'
           : latencyClass(good, slo) || 'warn';
  }

  /* --- sparklines ---------------------------------------------------- */

  function sparkline(values, opts) {
    const w = opts.width || 120, h = opts.height || 24;
    const s = svgEl('svg', { class: 'spark', width: w, height: h,
                             viewBox: '0 0 ' + w + ' ' + h,
                             role: 'img', 'aria-label': opts.label || '' });
    const nums = values.filter(isNum);
    const max = Math.max(opts.min || 0, ...nums, 1e-12);
    const step = values.length > 1 ? w / (values.length - 1) : w;
    const y = (v) => (h - 2 - (v / max) * (h - 4)).toFixed(1);
    let pts = [];
    const flush = () => {
      if (pts.length === 1) pts.push((+pts[0].split(',')[0] + 1) + ','
                                     + pts[0].split(',')[1]);
      if (pts.length) {
        s.append(svgEl('polyline', { points: pts.join(' '),
                                     class: opts.cls || '' }));
      }
      pts = [];
    };
    values.forEach((v, i) => {
      if (isNum(v)) pts.push((i * step).toFixed(1) + ',' + y(v));
      else flush();
    });
    flush();
    if (isNum(opts.line) && opts.line <= max) {
      s.append(svgEl('line', { class: 'slo', x1: 0, x2: w,
                               y1: y(opts.line), y2: y(opts.line) }));
    }
    const title = svgEl('title', {});
    title.textContent = opts.label || '';
    s.append(title);
    return s;
  }

  /* --- labels the gateway itself gives -------------------------------- */

  const RESERVED = {
    __overflow__: 'values past the cap (max_tenants, max_routes, ' +
                  'max_services or max_series) are counted here',
    none: 'requests without a tenant',
    invalid: 'tenant values that break the tenant rule',
    unmatched: 'requests rejected before a location matched',
  };

  function labelCell(value, kind) {
    const td = el('td', { class: 'text', title: value }, value);
    if (value === '__overflow__' || (kind === 'tenant' && RESERVED[value])) {
      td.append(el('span', { class: 'tag', title: RESERVED[value] },
                    value === '__overflow__' ? 'over the cap' : 'gateway'));
    }
    return td;
  }

  function numCell(col, v, text, cls) {
    return el('td', { class: cls || null,
                      data: { col: col, value: isNum(v) ? String(v) : '' } },
              text);
  }

  /* --- tables -------------------------------------------------------- */

  const ROUTE_COLS = [
    ['service', 'Service', 'text'], ['route', 'Route', 'text'],
    ['rate', 'req/s'], ['requests', 'Requests'],
    ['ratio_5xx', '5xx'], ['ratio_4xx', '4xx'],
    ['p50', 'p50'], ['p95', 'p95'], ['p99', 'p99'],
    ['latency_good', (d) => '≤ ' + fmtSec(d.slo.latency_threshold_seconds)],
    ['upstream_p95', 'Upstream p95'],
    ['in_flight', 'In flight'], [null, 'Last 15 min'], [null, ''],
  ];
  const TENANT_COLS = [
    ['tenant', 'Tenant', 'text'], ['rate', 'req/s'],
    ['requests', 'Requests'], ['errors', '5xx (window)'],
    ['ratio_5xx', '5xx'], ['ratio_4xx', '4xx'], ['p95', 'p95'], [null, ''],
  ];
  const BUSINESS_COLS = [
    ['metric', 'Metric', 'text'], [null, 'Type', 'text'],
    ['service', 'Service', 'text'], ['route', 'Route', 'text'],
    [null, 'Label', 'text'], ['value', 'Value'], ['rate', 'per s'],
    [null, 'Series'],
  ];

  function header(table, name, cols, d) {
    const t = state.tables[name];
    const tr = el('tr');
    for (const [key, heading, kind] of cols) {
      const title = typeof heading === 'function' ? heading(d) : heading;
      const th = el('th', { class: (kind === 'text' ? 'text ' : '')
                                   + (key ? 'sortable' : ''),
                            scope: 'col', data: { col: key || '' } }, title);
      if (key) {
        th.tabIndex = 0;
        if (t.sort === key) {
          th.setAttribute('aria-sort',
                          t.order === 'asc' ? 'ascending' : 'descending');
        }
        const sort = () => {
          if (t.sort === key) t.order = t.order === 'asc' ? 'desc' : 'asc';
          else { t.sort = key; t.order = kind === 'text' ? 'asc' : 'desc'; }
          t.offset = 0;
          refresh();
        };
        th.addEventListener('click', sort);
        th.addEventListener('keydown', (ev) => {
          if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); sort(); }
        });
      }
      tr.append(th);
    }
    table.replaceChildren(el('thead', {}, tr));
  }

  function body(table, rows, cols, empty) {
    const tb = el('tbody');
    if (!rows.length) {
      tb.append(el('tr', {}, el('td', { class: 'empty',
                                        colspan: cols.length }, empty)));
    }
    rows.forEach((r) => tb.append(r));
    table.append(tb);
  }

  function pager(node, name, page) {
    const t = state.tables[name];
    const first = page.total ? page.offset + 1 : 0;
    const last = Math.min(page.offset + page.limit, page.total);
    const prev = el('button', { type: 'button' }, '‹ prev');
    const next = el('button', { type: 'button' }, 'next ›');
    prev.disabled = page.offset === 0;
    next.disabled = last >= page.total;
    prev.addEventListener('click', () => {
      t.offset = Math.max(0, t.offset - t.limit); refresh();
    });
    next.addEventListener('click', () => { t.offset += t.limit; refresh(); });
    node.replaceChildren(prev, next,
                         first + '–' + last + ' of ' + fmtCount(page.total));
  }

  function grafana(d, uid, vars) {
    const base = safeUrl(d.links.grafana);
    if (!base) return null;
    const q = Object.entries(vars || {})
      .map(([k, v]) => 'var-' + k + '=' + encodeURIComponent(v)).join('&');
    return base.replace(/\/+$/, '') + '/d/' + uid + '/' + (q ? '?' + q : '');
  }

  function traceUrl(d, ex) {
    const tpl = safeUrl(d.links.trace);
    if (!tpl || !ex || !/^[0-9a-f]{32}$/.test(ex.trace_id)) return null;
    return tpl.split('{trace_id}').join(ex.trace_id);
  }

  function renderRoutes(d) {
    const table = document.getElementById('routes');
    header(table, 'routes', ROUTE_COLS, d);
    const slo = d.slo;
    const rows = d.routes.rows.map((r) => {
      const tr = el('tr', { data: { service: r.service, route: r.route } });
      tr.append(labelCell(r.service, 'service'), labelCell(r.route, 'route'),
        numCell('rate', r.rate, fmtRate(r.rate)),
        numCell('requests', r.requests, fmtCount(r.requests)),
        numCell('ratio_5xx', r.ratio_5xx, fmtPct(r.ratio_5xx),
                availabilityClass(r.ratio_5xx, slo)),
        numCell('ratio_4xx', r.ratio_4xx, fmtPct(r.ratio_4xx)),
        numCell('p50', r.p50, fmtSec(r.p50)),
        numCell('p95', r.p95, fmtSec(r.p95)),
        numCell('p99', r.p99, fmtSec(r.p99),
                thresholdClass(r.p99, r.latency_good, slo)),
        numCell('latency_good', r.latency_good, fmtPct(r.latency_good),
                latencyClass(r.latency_good, slo)),
        numCell('upstream_p95', r.upstream_p95, fmtSec(r.upstream_p95)),
        numCell('in_flight', r.in_flight, fmtCount(r.in_flight)));
      tr.append(el('td', {}, sparkline(r.spark.rate, {
        label: r.service + ' ' + r.route + ': requests per second, last '
               + 'snapshots', min: 0, width: 100 })));
      const links = el('td', { class: 'text' });
      const g = grafana(d, 'obs-red', { service: r.service, route: r.route });
      if (g) links.append(link(g, 'Grafana', 'Grafana: API gateway RED'));
      const t = traceUrl(d, r.exemplar);
      if (t) {
        links.append(' ', link(t, 'trace', 'slowest traced request of the '
                               + 'window: ' + fmtSec(r.exemplar.value)));
      }
      tr.append(links);
      return tr;
    });
    body(table, rows, ROUTE_COLS, d.filter.route
         ? 'no route matches the filter' : 'no requests yet');
    pager(document.getElementById('routes-pager'), 'routes', d.routes);
  }

  function renderTenants(d) {
    const table = document.getElementById('tenants');
    header(table, 'tenants', TENANT_COLS, d);
    const rows = d.tenants.rows.map((r) => {
      const tr = el('tr', { data: { tenant: r.tenant } });
      tr.append(labelCell(r.tenant, 'tenant'),
        numCell('rate', r.rate, fmtRate(r.rate)),
        numCell('requests', r.requests, fmtCount(r.requests)),
        numCell('errors', r.window_5xx, fmtCount(r.window_5xx)),
        numCell('ratio_5xx', r.ratio_5xx, fmtPct(r.ratio_5xx),
                availabilityClass(r.ratio_5xx, d.slo)),
        numCell('ratio_4xx', r.ratio_4xx, fmtPct(r.ratio_4xx)),
        numCell('p95', r.p95, fmtSec(r.p95)));
      const links = el('td', { class: 'text' });
      const g = grafana(d, 'obs-tenants', { tenant: r.tenant });
      if (g) links.append(link(g, 'Grafana', 'Grafana: Tenants'));
      tr.append(links);
      return tr;
    });
    body(table, rows, TENANT_COLS, d.filter.tenant
         ? 'no tenant matches the filter' : 'no requests yet');
    pager(document.getElementById('tenants-pager'), 'tenants', d.tenants);
    const t = state.tables.tenants;
    document.getElementById('rank-traffic').setAttribute('aria-pressed',
      String(t.sort === 'rate' && t.order === 'desc'));
    document.getElementById('rank-errors').setAttribute('aria-pressed',
      String(t.sort === 'errors' && t.order === 'desc'));
  }

  function renderBusiness(d) {
    const table = document.getElementById('business');
    header(table, 'business', BUSINESS_COLS, d);
    const rows = d.business.rows.map((r) => {
      const tr = el('tr', { data: { metric: r.metric } });
      tr.append(labelCell(r.metric, 'metric'), el('td', { class: 'text' },
                r.type === 'counter' ? 'counter' : 'gauge (highest)'),
        labelCell(r.service, 'service'), labelCell(r.route, 'route'),
        labelCell(r.label, 'label'),
        numCell('value', r.value, r.type === 'counter' ? fmtCount(r.value)
                                  : String(r.value)),
        numCell('rate', r.rate, fmtRate(r.rate)),
        numCell('series', r.series, fmtCount(r.series)));
      return tr;
    });
    body(table, rows, BUSINESS_COLS, 'no obs_metric observed');
    pager(document.getElementById('business-pager'), 'business', d.business);
  }

  function card(label, value, cls, note, spark, col, raw) {
    return el('div', { class: 'card', data: { card: col || '' } }, [
      el('div', { class: 'label' }, label),
      el('div', { class: 'value ' + (cls || ''),
                  data: { value: isNum(raw) ? String(raw) : '' } }, value),
      note ? el('div', { class: 'note' }, note) : null,
      spark || null,
    ]);
  }

  function renderOverview(d) {
    const t = d.total, s = d.spark, slo = d.slo;
    const budget = 1 - slo.availability;
    document.getElementById('overview').replaceChildren(
      card('Requests per second', fmtRate(t.rate), '', fmtCount(t.requests)
           + ' since start', sparkline(s.rate, { label: 'requests per second',
                                                 width: 150 }), 'rate', t.rate),
      card('5xx ratio', fmtPct(t.ratio_5xx),
           availabilityClass(t.ratio_5xx, slo), 'budget ' + fmtPct(budget)
           + ' (SLO ' + fmtPct(slo.availability) + ')',
           sparkline(s.ratio_5xx, { label: '5xx ratio', width: 150,
                                    cls: 'err', line: budget }),
           'ratio_5xx', t.ratio_5xx),
      card('4xx ratio', fmtPct(t.ratio_4xx), '', fmtCount(t.errors_4xx)
           + ' since start', null, 'ratio_4xx', t.ratio_4xx),
      card('p95 / p99', fmtSec(t.p95) + ' / ' + fmtSec(t.p99),
           thresholdClass(t.p99, t.latency_good, slo),
           fmtPct(t.latency_good) + ' ≤ ' + fmtSec(slo.latency_threshold_seconds)
           + ' (SLO ' + fmtPct(slo.latency_objective) + ')',
           sparkline(s.p95, { label: 'p95 per snapshot', width: 150,
                              line: slo.latency_threshold_seconds }),
           'p99', t.p99),
      card('In flight', fmtCount(t.in_flight), '', 'requests in nginx now',
           null, 'in_flight', t.in_flight),
      card('Series', fmtCount(d.series.count), d.series.count
           >= d.series.max ? 'bad' : '', 'of max ' + fmtCount(d.series.max),
           null, 'series', d.series.count));
  }

  function sum(obj) {
    return Object.values(obj).reduce((a, b) => a + b, 0);
  }

  function renderPipeline(d) {
    const p = d.pipeline, s = d.spark;
    const dropped = sum(p.module_dropped) + p.datagrams_lost;
    const shed = p.exporter ? sum(p.exporter.shed) : 0;
    const failing = p.destinations.filter((x) => x.state === 'failing');
    document.getElementById('pipeline').replaceChildren(
      card('Records in/s', fmtRate(p.records_rate), '',
           fmtCount(p.records_received) + ' received',
           sparkline(s.records_rate, { label: 'records per second',
                                       width: 150 }),
           'records_rate', p.records_rate),
      card('Module drops', fmtCount(dropped), dropped ? 'bad' : 'ok',
           fmtRate(p.dropped_rate) + '/s in the window',
           sparkline(s.dropped_rate, { label: 'records dropped per second',
                                       width: 150, cls: 'err' }),
           'dropped', dropped),
      card('Exporter backlog', p.exporter
           ? fmtCount(p.exporter.backlog_datagrams) : 'off', '',
           'datagrams waiting for the exporter threads', null, 'backlog',
           p.exporter ? p.exporter.backlog_datagrams : null),
      card('Shed', fmtCount(shed), shed ? 'warn' : 'ok',
           'records without log line or span (metrics still counted)',
           null, 'shed', shed),
      card('Destinations', failing.length ? failing.length + ' failing'
           : 'all well', failing.length ? 'bad' : 'ok',
           p.destinations.length + ' configured', null, 'destinations',
           failing.length));

    const cols = ['Destination', 'Mode', 'State', 'Sent', 'Failed requests',
                  'Retries', 'Dropped', 'Queue', 'Spool', 'Last success'];
    const table = document.getElementById('destinations');
    table.replaceChildren(el('thead', {}, el('tr', {}, cols.map((c, i) =>
      el('th', { class: i < 3 ? 'text' : null, scope: 'col' }, c)))));
    const rows = p.destinations.map((x) => {
      const drops = sum(x.dropped);
      const why = Object.entries(x.dropped).filter(([, n]) => n)
        .map(([k, n]) => k + ' ' + fmtCount(n)).join(', ');
      return el('tr', { data: { destination: x.name } }, [
        el('td', { class: 'text' }, x.name),
        el('td', { class: 'text' }, x.mode),
        el('td', { class: 'text ' + (x.state === 'failing' ? 'bad'
                                     : x.state === 'ok' ? 'ok' : '') },
           x.state),
        numCell('sent', x.sent, fmtCount(x.sent)),
        numCell('requests_failed', x.requests_failed,
                fmtCount(x.requests_failed), x.requests_failed ? 'warn' : ''),
        numCell('retries', x.retries, fmtCount(x.retries)),
        el('td', { class: drops ? 'bad' : '', title: why,
                   data: { col: 'dropped', value: String(drops) } },
           fmtCount(drops)),
        numCell('queue_bytes', x.queue_bytes, fmtBytes(x.queue_bytes)),
        numCell('spool_bytes', x.spool_bytes, fmtBytes(x.spool_bytes)),
        numCell('last_success', x.last_success,
                fmtAge(x.last_success, d.time)),
      ]);
    });
    body(table, rows, cols, 'no destination configured');

    const counts = [];
    const add = (title, obj) => {
      for (const [k, n] of Object.entries(obj)) {
        if (n) counts.push(el('span', {}, [title + ' ' + k + ': ',
                                           el('b', {}, fmtCount(n))]));
      }
    };
    add('dropped', p.module_dropped);
    add('decode error', p.decode_errors);
    add('overflow', p.series_overflow);
    if (p.datagrams_lost) {
      counts.push(el('span', {}, ['datagrams lost: ',
                                  el('b', {}, fmtCount(p.datagrams_lost))]));
    }
    if (p.business_rejected) {
      counts.push(el('span', {}, ['obs_metric rejected: ',
                                  el('b', {}, fmtCount(p.business_rejected))]));
    }
    if (!counts.length) counts.push(el('span', {}, 'no drops, decode errors '
                                        + 'or overflows since start'));
    document.getElementById('pipeline-counts').replaceChildren(...counts);
  }

  function renderHeader(d) {
    const when = new Date(d.time * 1000);
    document.getElementById('meta').replaceChildren(
      'snapshot ', el('time', { datetime: when.toISOString(),
                                id: 'snapshot-time',
                                data: { time: String(d.time) } },
                      when.toLocaleTimeString()),
      ' · every ' + d.interval_seconds + ' s · up '
      + Math.round((d.time - d.started) / 60) + ' min · ' + d.version);
    document.getElementById('window').textContent =
      'rates, ratios and quantiles over the last '
      + Math.round(d.window.seconds) + ' s; sparklines: '
      + Math.round(d.history_seconds / 60) + ' min';
    const nav = document.getElementById('links');
    const links = [];
    for (const [uid, name] of [['obs-red', 'API performance'],
                               ['obs-slo', 'SLOs'], ['obs-tenants', 'Tenants'],
                               ['obs-pipeline', 'Pipeline']]) {
      const g = grafana(d, uid);
      if (g) links.push(link(g, name, 'Grafana dashboard'));
    }
    links.push(link('/metrics', '/metrics', 'the raw exposition'));
    nav.replaceChildren(...links);
    document.getElementById('footer').textContent =
      'Colours: within the error budget (ok), burning it up to '
      + FAST_BURN + '× (warn), faster (bad). SLOs: availability '
      + fmtPct(d.slo.availability) + ', latency '
      + fmtPct(d.slo.latency_objective) + ' under '
      + fmtSec(d.slo.latency_threshold_seconds) + '.';
  }

  function render(d) {
    state.data = d;
    renderHeader(d);
    renderOverview(d);
    renderRoutes(d);
    renderTenants(d);
    renderBusiness(d);
    renderPipeline(d);
    document.body.dataset.snapshot = String(d.time);
    document.body.dataset.route = d.filter.route || '';
    document.body.dataset.tenant = d.filter.tenant || '';
  }

  /* --- polling ------------------------------------------------------- */

  function query() {
    const q = new URLSearchParams();
    if (state.route) q.set('route', state.route);
    if (state.tenant) q.set('tenant', state.tenant);
    for (const [name, t] of Object.entries(state.tables)) {
      q.set(name + '_sort', t.sort);
      q.set(name + '_order', t.order);
      q.set(name + '_offset', String(t.offset));
      q.set(name + '_limit', String(t.limit));
    }
    return q;
  }

  function setConn(ok, text) {
    const c = document.getElementById('conn');
    c.className = 'conn ' + (ok ? 'live' : 'stale');
    c.textContent = text;
  }

  async function refresh() {
    const seq = ++state.seq;
    clearTimeout(state.timer);
    const q = query();
    history.replaceState(null, '', '#' + q.toString());
    let wait = 5000;
    try {
      const r = await fetch('/status.json?' + q.toString(),
                            { cache: 'no-store', credentials: 'same-origin' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const d = await r.json();
      if (seq !== state.seq) return;    /* a newer request is on its way */
      render(d);
      document.body.dataset.seq = String(seq);
      setConn(true, 'live');
      wait = d.interval_seconds * 1000;
      /* ask again just after the next snapshot */
      const next = (d.time + d.interval_seconds) * 1000 - Date.now() + 300;
      if (next > 200 && next < wait * 2) wait = next;
    } catch (e) {
      if (seq !== state.seq) return;
      setConn(false, 'not updating: ' + e.message);
    }
    state.timer = setTimeout(refresh, wait);
  }

  function fromHash() {
    const q = new URLSearchParams(location.hash.slice(1));
    state.route = (q.get('route') || '').slice(0, 256);
    state.tenant = (q.get('tenant') || '').slice(0, 256);
    for (const [name, t] of Object.entries(state.tables)) {
      const sort = q.get(name + '_sort');
      if (sort && /^[a-z0-9_]{1,32}$/.test(sort)) t.sort = sort;
      const order = q.get(name + '_order');
      if (order === 'asc' || order === 'desc') t.order = order;
      const off = parseInt(q.get(name + '_offset'), 10);
      if (off >= 0) t.offset = off;
    }
    document.getElementById('route-filter').value = state.route;
    document.getElementById('tenant-filter').value = state.tenant;
  }

  function onFilter(input, key) {
    let t = 0;
    input.addEventListener('input', () => {
      clearTimeout(t);
      t = setTimeout(() => {
        state[key] = input.value;
        state.tables.routes.offset = 0;
        state.tables.tenants.offset = 0;
        state.tables.business.offset = 0;
        refresh();
      }, 250);
    });
  }

  function start() {
    fromHash();
    onFilter(document.getElementById('route-filter'), 'route');
    onFilter(document.getElementById('tenant-filter'), 'tenant');
    const rank = (sort) => () => {
      const t = state.tables.tenants;
      t.sort = sort; t.order = 'desc'; t.offset = 0;
      refresh();
    };
    document.getElementById('rank-traffic').addEventListener('click',
                                                             rank('rate'));
    document.getElementById('rank-errors').addEventListener('click',
                                                            rank('errors'));
    refresh();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
