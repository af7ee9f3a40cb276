// Vigil status page. Plain browser JavaScript, no framework, no build step: reads the JSON API
// (GET /rules, /streams, /alerts, /streams/:stream/late; POST /rules/:id/backtest) and renders
// it. Every value from the API reaches the DOM through textContent or setAttribute, never as
// markup. Refreshes every 2 s while the tab is visible. Failed deliveries can be queued again
// (POST /alerts/:id/retry, POST /admin/sinks/:sink/retry): those routes need the API token,
// asked for with a prompt on a 401 and kept for the tab's session only.
'use strict';

(function () {
  const REFRESH_MS = 2000;
  const FETCH_TIMEOUT_MS = 5000;
  /** A backtest is bounded by the service (VIGIL_WORK_TIME_MS); wait longer than a plain read. */
  const BACKTEST_TIMEOUT_MS = 120000;
  const ALERT_LIMIT = 20;
  const LATE_LIMIT = 5;

  // ---- DOM helpers (text only) ----

  /** An element with attributes, text and children; `text` goes through textContent. */
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [name, value] of Object.entries(attrs)) {
        if (value === undefined || value === null) continue;
        if (name === 'text') node.textContent = String(value);
        else if (name === 'class') node.className = String(value);
        else if (name === 'testid') node.setAttribute('data-testid', String(value));
        else if (name === 'data') for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
        else node.setAttribute(name, String(value));
      }
    }
    for (const child of children || []) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  function td(text, cls, attrs) {
    return el('td', Object.assign({ class: cls, text: text }, attrs || {}));
  }

  function emptyRow(colspan, testid, text) {
    return el('tr', { testid: testid }, [el('td', { class: 'empty', colspan: colspan, text: text })]);
  }

  const $ = (testid) => document.querySelector('[data-testid="' + testid + '"]');

  // ---- formatting ----

  function isoTime(ms) {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
    const d = new Date(ms);
    return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
  }

  function duration(ms) {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
    const a = Math.abs(ms);
    const sign = ms < 0 ? '-' : '';
    if (a < 1000) return sign + Math.round(a) + ' ms';
    if (a < 60e3) return sign + (a / 1e3).toFixed(1) + ' s';
    if (a < 3600e3) return sign + (a / 60e3).toFixed(1) + ' min';
    if (a < 86400e3) return sign + (a / 3600e3).toFixed(1) + ' h';
    return sign + Math.round(a / 86400e3) + ' d';
  }

  function keyText(key) {
    if (key === null || key === undefined) return '—';
    return typeof key === 'string' ? key : JSON.stringify(key);
  }

  function num(n) {
    return typeof n === 'number' ? String(n) : '—';
  }

  function clip(s, max) {
    return s.length > max ? s.slice(0, max - 1) + '…' : s;
  }

  // ---- API ----

  async function api(path, init) {
    const res = await fetch(path, Object.assign({ headers: { accept: 'application/json' }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) }, init || {}));
    const text = await res.text();
    let body = null;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch (_) {
      body = null;
    }
    if (!res.ok) {
      const msg = body && body.error && body.error.message ? body.error.message : res.status + ' ' + res.statusText;
      const err = new Error(msg);
      err.status = res.status;
      err.body = body;
      throw err;
    }
    return body;
  }

  // ---- writes that need the API token ----

  const TOKEN_KEY = 'vigil.apiToken';

  /** POSTs with the API token; on a 401 asks for it (once per try) and tries again. */
  async function authorizedPost(path) {
    let token = sessionStorage.getItem(TOKEN_KEY);
    for (let i = 0; ; i++) {
      const headers = { accept: 'application/json' };
      if (token) headers.authorization = 'Bearer ' + token;
      try {
        return await api(path, { method: 'POST', headers: headers });
      } catch (e) {
        if (e.status !== 401 || i > 0) throw e;
        token = window.prompt('API token (VIGIL_API_TOKEN) for this action:');
        if (token === null || token === '') throw e;
        sessionStorage.setItem(TOKEN_KEY, token);
      }
    }
  }

  async function retry(path, label) {
    const state = $('retry-state');
    state.textContent = label + '…';
    try {
      const res = await authorizedPost(path);
      state.textContent = label + ': ' + num(res && res.retried) + ' delivery(ies) queued again';
      state.dataset.state = 'ok';
    } catch (e) {
      state.textContent = label + ' failed: ' + (e && e.message ? e.message : String(e));
      state.dataset.state = 'error';
    }
    if (!inflight) refresh();
  }

  // ---- sections ----

  function renderRules(rules) {
    const body = $('rules-body');
    if (rules.length === 0) {
      body.replaceChildren(emptyRow(10, 'rules-empty', 'No rules loaded.'));
      return;
    }
    body.replaceChildren(...rules.map((r) => {
      const c = r.counters || {};
      const statusCell = el('td', { class: 'status-' + r.status, testid: 'rule-status' }, [r.status]);
      if (Array.isArray(r.errors) && r.errors.length > 0) {
        statusCell.append(el('ul', { class: 'rule-errors', testid: 'rule-errors' }, r.errors.map((d) =>
          el('li', { text: (d.file ? d.file + ':' : '') + d.line + ':' + d.col + ': ' + d.message }))));
      }
      if (Array.isArray(r.warnings) && r.warnings.length > 0) {
        statusCell.append(el('ul', { class: 'rule-warnings', testid: 'rule-warnings' }, r.warnings.map((d) =>
          el('li', { text: (d.file ? d.file + ':' : '') + d.line + ':' + d.col + ': warning: ' + d.message }))));
      }
      const origin = r.origin === 'file' && r.file ? 'file (' + r.file + ')' : r.origin;
      const edit = el('button', { type: 'button', class: 'rule-edit', testid: 'rule-backtest', title: 'copy this rule into the backtest box to try an edit', text: 'try an edit' });
      edit.addEventListener('click', () => void editInBacktest(r.id));
      const updated = td(r.updatedAt || '—', 'time');
      updated.append(' ', edit);
      return el('tr', { testid: 'rule-row', data: { rule: r.id } }, [
        td(r.id, 'mono', { testid: 'rule-id', title: r.title || undefined }),
        td(num(r.version), 'num', { testid: 'rule-version' }),
        td(origin, undefined, { testid: 'rule-origin' }),
        statusCell,
        td(num(c.events), 'num'),
        td(num(c.matches), 'num', { testid: 'rule-matches' }),
        td(num(c.timeouts), 'num'),
        td(num(c.partialMatches), 'num', { testid: 'rule-partials' }),
        td((r.streams || []).join(', ')),
        updated,
      ]);
    }));
  }

  function renderStreams(streams) {
    const body = $('streams-body');
    if (streams.length === 0) {
      body.replaceChildren(emptyRow(7, 'streams-empty', 'No streams yet.'));
      return;
    }
    body.replaceChildren(...streams.map((s) => el('tr', { testid: 'stream-row', data: { stream: s.name } }, [
      td(s.name, 'mono', { testid: 'stream-name' }),
      td(isoTime(s.watermark), 'time', { testid: 'stream-watermark', title: s.maxTime !== null && s.maxTime !== undefined ? 'max event time ' + isoTime(s.maxTime) : undefined }),
      td(duration(s.lagMs), 'num', { testid: 'stream-lag' }),
      td(num(s.accepted), 'num', { testid: 'stream-accepted' }),
      td(num(s.late), 'num', { testid: 'stream-late' }),
      td(num(s.rejected), 'num', { testid: 'stream-rejected' }),
      td((s.rules || []).join(', ')),
    ])));
  }

  function deliveryList(delivery, alertId) {
    const names = Object.keys(delivery || {}).sort();
    if (names.length === 0) return el('span', { class: 'muted', text: 'no sinks' });
    const items = names.map((name) => {
      const d = delivery[name] || {};
      const state = typeof d.state === 'string' ? d.state : 'unknown';
      return el('li', {
        class: 'dl-' + state,
        testid: 'delivery',
        data: { sink: name, state: state },
        title: d.lastError ? 'last error: ' + d.lastError : undefined,
        text: name + ' ' + state + ' ×' + num(d.attempts),
      });
    });
    const list = el('ul', { class: 'delivery' }, items);
    if (!names.some((n) => delivery[n] && delivery[n].state === 'failed')) return list;
    const button = el('button', { type: 'button', class: 'small', testid: 'retry-alert', text: 'retry' });
    button.addEventListener('click', () => retry('/alerts/' + encodeURIComponent(alertId) + '/retry', 'retry alert ' + alertId));
    return el('div', null, [list, button]);
  }

  /** The kind of a sink name (`0:webhook` → `webhook`). */
  function sinkKind(name) {
    const i = name.indexOf(':');
    return i < 0 ? name : name.slice(i + 1);
  }

  /** One "retry all failed" button per sink kind with a failed delivery among the alerts shown. */
  function renderRetryBar(alerts) {
    const kinds = new Set();
    for (const a of alerts) for (const [name, d] of Object.entries(a.delivery || {})) if (d && d.state === 'failed') kinds.add(sinkKind(name));
    $('retry-bar').replaceChildren(...[...kinds].sort().map((kind) => {
      const b = el('button', { type: 'button', class: 'small', testid: 'retry-sink', data: { sink: kind }, text: 'retry all failed ' + kind + ' deliveries' });
      b.addEventListener('click', () => retry('/admin/sinks/' + encodeURIComponent(kind) + '/retry', 'retry failed ' + kind + ' deliveries'));
      return b;
    }));
  }

  function renderAlerts(alerts) {
    const body = $('alerts-body');
    renderRetryBar(alerts);
    if (alerts.length === 0) {
      body.replaceChildren(emptyRow(6, 'alerts-empty', 'No alerts yet.'));
      return;
    }
    body.replaceChildren(...alerts.map((a) => el('tr', { testid: 'alert-row', data: { rule: a.rule, id: a.id } }, [
      td(a.time, 'time', { testid: 'alert-time', title: 'detected ' + (a.detectedAt || '?') }),
      td(a.rule + (a.version !== undefined ? ' v' + a.version : ''), 'mono', { testid: 'alert-rule' }),
      td(keyText(a.key), 'mono', { testid: 'alert-key' }),
      td(a.severity + (a.kind === 'timeout' ? ' (timeout)' : ''), 'sev sev-' + a.severity, { testid: 'alert-severity' }),
      td(a.message, 'msg', { testid: 'alert-message' }),
      el('td', { testid: 'alert-delivery' }, [deliveryList(a.delivery, a.id)]),
    ])));
  }

  function renderLate(perStream) {
    const body = $('late-body');
    const withLate = perStream.filter((p) => p.late.length > 0 || p.error);
    if (withLate.length === 0) {
      body.replaceChildren(el('p', { class: 'muted', testid: 'late-empty', text: 'No late events.' }));
      return;
    }
    body.replaceChildren(...withLate.map((p) => el('div', { class: 'late-stream', testid: 'late-stream', data: { stream: p.stream } }, [
      el('h3', { text: p.stream + ' (' + p.total + ' late, newest first)' }),
      p.error
        ? el('p', { class: 'request-error', text: p.error })
        : el('table', null, [
            el('thead', null, [el('tr', null, [el('th', { text: 'event time' }), el('th', { text: 'arrived' }), el('th', { text: 'event' })])]),
            el('tbody', null, p.late.map((e) => el('tr', { testid: 'late-row' }, [
              td(isoTime(e.time), 'time'),
              td(e.arrivalTime || '—', 'time'),
              td(clip(JSON.stringify(e.event), 300), 'late-event', { testid: 'late-event' }),
            ]))),
          ]),
    ])));
  }

  // ---- refresh loop ----

  let timer = null;
  let inflight = false;

  function setConn(state, text) {
    const c = $('conn');
    c.dataset.state = state;
    c.textContent = text;
  }

  async function refresh() {
    inflight = true;
    try {
      const [rules, streams, alerts] = await Promise.all([api('/rules'), api('/streams'), api('/alerts?limit=' + ALERT_LIMIT)]);
      const streamList = (streams && streams.streams) || [];
      const late = await Promise.all(streamList.filter((s) => s.late > 0).map(async (s) => {
        try {
          const page = await api('/streams/' + encodeURIComponent(s.name) + '/late?limit=' + LATE_LIMIT);
          return { stream: s.name, total: s.late, late: page.late || [] };
        } catch (e) {
          return { stream: s.name, total: s.late, late: [], error: String(e && e.message ? e.message : e) };
        }
      }));
      renderRules((rules && rules.rules) || []);
      renderStreams(streamList);
      renderAlerts((alerts && alerts.alerts) || []);
      renderLate(late);
      setConn('ok', 'connected');
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      setConn('error', 'cannot reach the service: ' + (e && e.message ? e.message : String(e)));
    } finally {
      inflight = false;
    }
  }

  async function loop() {
    timer = null;
    await refresh();
    schedule();
  }

  function schedule() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (document.hidden) {
      setConn('paused', 'paused (tab hidden)');
      return;
    }
    timer = setTimeout(loop, REFRESH_MS);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      setConn('paused', 'paused (tab hidden)');
    } else if (timer === null && !inflight) {
      loop();
    }
  });

  // ---- backtest ----

  /** Start offsets of each line of `text` (lines split at \n or \r\n). */
  function lineStarts(text) {
    const starts = [0];
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
    return starts;
  }

  function lineOf(text, line) {
    const starts = lineStarts(text);
    if (line < 1 || line > starts.length) return null;
    const start = starts[line - 1];
    const end = line < starts.length ? starts[line] - 1 : text.length;
    return { start: start, text: text.slice(start, end).replace(/\r$/, '') };
  }

  /** How many carets the server's rendering puts under the span (at least 1). */
  function spanLength(d) {
    if (typeof d.rendered !== 'string') return 1;
    const last = d.rendered.split('\n').pop() || '';
    const m = /\^+\s*$/.exec(last);
    return m ? m[0].trim().length : 1;
  }

  /** Puts a loaded rule's text into the backtest box: a backtest of it runs in place of the loaded version. */
  async function editInBacktest(id) {
    try {
      const rule = await api('/rules/' + encodeURIComponent(id));
      const box = $('bt-rule');
      box.value = rule.text;
      $('bt-state').textContent = 'editing ' + id + ': the backtest runs this text in place of the loaded rule';
      box.focus();
      box.scrollIntoView({ block: 'center' });
    } catch (e) {
      $('bt-state').textContent = 'cannot read rule ' + id + ': ' + (e && e.message ? e.message : String(e));
    }
  }

  function ruleIdOf(text) {
    const m = /(^|\n)\s*rule\s+([A-Za-z_][A-Za-z0-9_.-]*)/.exec(text);
    return m ? m[2] : 'backtest';
  }

  function selectInRule(textarea, source, d) {
    const line = lineOf(source, d.line);
    if (line === null) return;
    const from = Math.min(line.start + Math.max(0, d.col - 1), source.length);
    const to = Math.min(from + spanLength(d), line.start + line.text.length);
    textarea.focus();
    textarea.setSelectionRange(from, Math.max(from, to));
    // Scroll the line into view: approximate by line height.
    const lh = parseFloat(getComputedStyle(textarea).lineHeight) || 16;
    textarea.scrollTop = Math.max(0, (d.line - 3) * lh);
  }

  function renderDiagnostics(source, diagnostics) {
    const textarea = $('bt-rule');
    return el('ul', { class: 'diagnostics', testid: 'bt-diagnostics' }, diagnostics.map((d) => {
      const pos = d.line + ':' + d.col;
      const button = el('button', {
        type: 'button',
        class: 'diag-pos',
        testid: 'bt-diagnostic-pos',
        title: 'select in the rule text',
        text: pos + ': ' + d.severity + ': ' + d.message + (d.code ? ' [' + d.code + ']' : ''),
      });
      button.addEventListener('click', () => selectInRule(textarea, source, d));
      const line = lineOf(source, d.line);
      let caret = null;
      if (line !== null) {
        const pad = line.text.slice(0, Math.max(0, d.col - 1)).replace(/[^\t]/g, ' ');
        caret = el('pre', { class: 'caret', testid: 'bt-caret', text: line.text + '\n' + pad + '^'.repeat(spanLength(d)) });
      }
      return el('li', { class: 'diag-' + d.severity, testid: 'bt-diagnostic', data: { line: d.line, col: d.col, severity: d.severity } }, [button, caret]);
    }));
  }

  function renderRecords(records) {
    const alerts = records.filter((r) => r.kind !== 'late');
    const late = records.filter((r) => r.kind === 'late');
    const parts = [];
    parts.push(el('h3', { testid: 'bt-summary', text: alerts.length + ' alert' + (alerts.length === 1 ? '' : 's') + ', ' + late.length + ' late event' + (late.length === 1 ? '' : 's') }));
    if (alerts.length > 0) {
      parts.push(el('table', { testid: 'bt-records' }, [
        el('thead', null, [el('tr', null, ['time', 'rule', 'key', 'severity', 'message', 'events'].map((h) => el('th', { text: h })))]),
        el('tbody', null, alerts.map((a) => el('tr', { testid: 'bt-record' }, [
          td(a.time, 'time'),
          td(a.rule, 'mono'),
          td(keyText(a.key), 'mono'),
          td(a.severity + (a.kind === 'timeout' ? ' (timeout)' : ''), 'sev sev-' + a.severity),
          td(a.message, 'msg', { testid: 'bt-record-message' }),
          td(clip(JSON.stringify(a.events), 300), 'late-event'),
        ]))),
      ]));
    }
    if (late.length > 0) {
      parts.push(el('ul', { class: 'bt-late', testid: 'bt-late' }, late.map((r) =>
        el('li', { class: 'late-event', text: 'late on ' + r.stream + ': ' + clip(JSON.stringify(r.event), 300) }))));
    }
    return parts;
  }

  async function runBacktest(ev) {
    ev.preventDefault();
    const text = $('bt-rule').value;
    const events = $('bt-events').value;
    const stream = $('bt-stream').value.trim();
    const out = $('bt-result');
    const state = $('bt-state');
    const button = $('bt-run');
    button.disabled = true;
    state.textContent = 'running…';
    const payload = { text: text, events: events };
    if (stream !== '') payload.stream = stream;
    try {
      const res = await api('/rules/' + encodeURIComponent(ruleIdOf(text)) + '/backtest', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(BACKTEST_TIMEOUT_MS),
      });
      const diagnostics = res.diagnostics || [];
      const errors = diagnostics.filter((d) => d.severity === 'error');
      const parts = [];
      if (diagnostics.length > 0) {
        parts.push(el('h3', { text: errors.length > 0 ? 'The rule does not compile' : 'Warnings' }));
        parts.push(renderDiagnostics(text, diagnostics));
      }
      if (errors.length === 0) parts.push(...renderRecords(res.records || []));
      if ((res.errors || []).length > 0) {
        parts.push(el('h3', { text: 'Events not used' }));
        parts.push(el('ul', { class: 'event-errors', testid: 'bt-event-errors' }, res.errors.map((m) => el('li', { text: m }))));
      }
      out.replaceChildren(...parts);
      state.textContent = errors.length > 0 ? errors.length + ' error' + (errors.length === 1 ? '' : 's') : 'done';
    } catch (e) {
      out.replaceChildren(el('p', { class: 'request-error', testid: 'bt-request-error', text: e && e.message ? e.message : String(e) }));
      state.textContent = 'failed';
    } finally {
      button.disabled = false;
    }
  }

  function start() {
    $('backtest-form').addEventListener('submit', runBacktest);
    loop();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
