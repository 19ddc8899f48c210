/* global uPlot, window, document, sessionStorage, fetch, AbortController, setTimeout, clearTimeout */
// The live dashboard of `ingest up` (ops-api.md, The live dashboard): plain browser JavaScript, no build step, no
// CDN. It reads the operations API with the token `ingest up` printed and redraws itself every REFRESH_MS.
'use strict';

(() => {
  /** At most 2 s between two looks (ops-api.md); the next look is planned from the start of the last one. */
  const REFRESH_MS = 1500;
  /** A look that hangs must not stop the page: it is abandoned and said. */
  const REQUEST_TIMEOUT_MS = 5000;
  const STATS_MINUTES = 15;
  const TOKEN_KEY = 'ingest.dashboard.token';
  const IN_FLIGHT = ['queued', 'waiting', 'running', 'paused'];
  const FINISHED_SHOWN = 10;
  /** Recent failures: the first few failed records of the last few finished files that have any. */
  const FAILURE_FILES = 5;
  const FAILURES_PER_FILE = 5;
  const CHART_HEIGHT = 220;
  const COLOURS = { calls: '#2563eb', limit: '#dc2626', succeeded: '#16a34a', failed: '#dc2626' };

  const element = (id) => document.getElementById(id);
  const numbers = new Intl.NumberFormat();

  /** A refused or failed request, with what the page shows of it. */
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.name = 'ApiError';
      this.status = status;
      this.code = code;
    }
  }

  const token = {
    get: () => sessionStorage.getItem(TOKEN_KEY),
    set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
    clear: () => sessionStorage.removeItem(TOKEN_KEY),
  };

  /** GET a path of the API as JSON; every failure becomes an ApiError (never an unhandled rejection). */
  async function api(path) {
    const bearer = token.get();
    if (!bearer) throw new ApiError(401, 'Unauthorized', 'no token');
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    let response;
    try {
      response = await fetch(path, {
        headers: { Authorization: `Bearer ${bearer}`, Accept: 'application/json' },
        cache: 'no-store',
        signal: controller.signal,
      });
    } catch (error) {
      const why =
        error && error.name === 'AbortError' ? 'took too long' : 'did not answer; is `ingest up` still running?';
      throw new ApiError(0, 'Unreachable', `The API ${why}`);
    } finally {
      clearTimeout(timer);
    }
    let body;
    try {
      body = await response.json();
    } catch {
      body = undefined;
    }
    if (!response.ok) {
      const error = body && body.error ? body.error : {};
      throw new ApiError(
        response.status,
        error.code || `HTTP ${response.status}`,
        error.message || response.statusText,
      );
    }
    return body;
  }

  /** The API's answers are checked before use: a mismatch is said on the page, not drawn as nonsense. */
  function check(condition, what) {
    if (!condition) throw new ApiError(0, 'UnexpectedAnswer', `Unexpected answer from ${what}`);
  }
  const isCount = (value) => typeof value === 'number' && Number.isFinite(value) && value >= 0;
  const isCountArray = (value) => Array.isArray(value) && value.every(isCount);

  function checkFileList(list) {
    check(list && Array.isArray(list.files), 'GET /v1/files');
    for (const file of list.files) {
      check(
        typeof file.fileId === 'string' &&
          typeof file.name === 'string' &&
          typeof file.status === 'string' &&
          ['received', 'succeeded', 'failed', 'pending'].every((field) => isCount(file[field])) &&
          typeof file.progress === 'number',
        'GET /v1/files',
      );
    }
    return list.files;
  }

  function checkStats(stats) {
    check(
      stats &&
        isCount(stats.limitPerMinute) &&
        isCountArray(stats.callsPerMinute) &&
        stats.recordsPerMinute &&
        isCountArray(stats.recordsPerMinute.succeeded) &&
        isCountArray(stats.recordsPerMinute.failed) &&
        stats.latencyMs &&
        stats.errorsByCode &&
        typeof stats.errorsByCode === 'object',
      'GET /v1/stats',
    );
    return stats;
  }

  // Formatting.
  const count = (value) => numbers.format(value);
  const orDash = (value) => (value === null || value === undefined || value === '' ? '–' : String(value));
  /** ETA as m:ss (minutes go past 59 for a long file). */
  function minutesSeconds(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    const whole = Math.round(seconds);
    return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
  }
  const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–');
  const milliseconds = (value) => (value === null || value === undefined ? '–' : `${count(Math.round(value))} ms`);
  function failuresText(failures) {
    const entries = Object.entries(failures || {}).filter(([, n]) => n > 0);
    return entries.length === 0 ? '–' : entries.map(([code, n]) => `${code} ×${count(n)}`).join(', ');
  }

  /** A new element with text and attributes. */
  function make(tag, attributes = {}, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** Sets a cell's shown text and, for tests and scripts, its raw value. */
  function setField(row, field, text, value) {
    const cell = row.querySelector(`[data-field="${field}"]`);
    if (cell.textContent !== text) cell.textContent = text;
    if (value !== undefined) cell.dataset.value = String(value);
  }

  /**
   * Keeps one row per file, updated in place (no flicker, focus kept), in the order given; rows of files no
   * longer listed go.
   */
  function syncRows(tbody, files, createRow, updateRow) {
    const existing = new Map([...tbody.rows].map((row) => [row.dataset.fileId, row]));
    for (const file of files) {
      let row = existing.get(file.fileId);
      if (row) existing.delete(file.fileId);
      else row = createRow(file);
      updateRow(row, file);
      tbody.append(row);
    }
    for (const row of existing.values()) row.remove();
  }

  function nameCell(file) {
    const cell = make('td', { 'data-field': 'name' });
    const button = make('button', { type: 'button', class: 'link', title: file.fileId }, file.name);
    button.addEventListener('click', () => selectFile(file.fileId));
    cell.append(button, make('span', { class: 'meta muted small' }, `${file.partner} · ${file.kind}`));
    return cell;
  }

  const COUNT_FIELDS = ['received', 'succeeded', 'failed', 'pending'];

  function inFlightRow(file) {
    const row = make('tr', { 'data-file-id': file.fileId });
    const progress = make('td', { 'data-field': 'progress', class: 'progress-col' });
    progress.append(
      make('progress', { max: '1', value: '0', 'aria-label': `Progress of ${file.name}` }),
      make('span', { class: 'percent' }),
    );
    row.append(
      nameCell(file),
      make('td', { 'data-field': 'status' }),
      make('td', { 'data-field': 'phase' }),
      progress,
      ...COUNT_FIELDS.map((field) => make('td', { 'data-field': field, class: 'num' })),
      make('td', { 'data-field': 'eta', class: 'num' }),
      make('td', { 'data-field': 'waitingFor' }),
    );
    return row;
  }

  function updateInFlightRow(row, file) {
    row.dataset.status = file.status;
    setField(row, 'status', file.status);
    setField(row, 'phase', orDash(file.phase));
    for (const field of COUNT_FIELDS) setField(row, field, count(file[field]), file[field]);
    setField(row, 'eta', minutesSeconds(file.etaSeconds), file.etaSeconds === null ? '' : file.etaSeconds);
    setField(row, 'waitingFor', orDash(file.waitingFor));
    const cell = row.querySelector('[data-field="progress"]');
    cell.dataset.value = String(file.progress);
    cell.querySelector('progress').value = file.progress;
    cell.querySelector('.percent').textContent = `${Math.floor(file.progress * 100)}%`;
  }

  function finishedRow(file) {
    const row = make('tr', { 'data-file-id': file.fileId });
    row.append(
      nameCell(file),
      make('td', { 'data-field': 'status' }),
      ...['received', 'succeeded', 'failed'].map((field) => make('td', { 'data-field': field, class: 'num' })),
      make('td', { 'data-field': 'failures' }),
      make('td', { 'data-field': 'finishedAt' }),
    );
    return row;
  }

  function updateFinishedRow(row, file) {
    row.dataset.status = file.status;
    setField(row, 'status', file.status);
    for (const field of ['received', 'succeeded', 'failed']) setField(row, field, count(file[field]), file[field]);
    setField(row, 'failures', failuresText(file.failures));
    setField(row, 'finishedAt', clock(file.finishedAt), file.finishedAt || '');
  }

  function renderFiles(files) {
    const inFlight = files.filter((file) => IN_FLIGHT.includes(file.status));
    const finished = files
      .filter((file) => !IN_FLIGHT.includes(file.status))
      .sort((a, b) => String(b.finishedAt || '').localeCompare(String(a.finishedAt || '')))
      .slice(0, FINISHED_SHOWN);
    syncRows(element('files-in-flight').tBodies[0], inFlight, inFlightRow, updateInFlightRow);
    syncRows(element('files-finished').tBodies[0], finished, finishedRow, updateFinishedRow);
    element('in-flight-empty').hidden = inFlight.length > 0;
    element('finished-empty').hidden = finished.length > 0;
    return finished;
  }

  // Charts: one value per minute, oldest first, the last being the current minute.
  const charts = {};

  function minuteStarts(length) {
    const now = Math.floor(Date.now() / 60_000) * 60;
    return Array.from({ length }, (_, i) => now - (length - 1 - i) * 60);
  }

  function chartOptions(container, series, yMax) {
    return {
      width: Math.max(container.clientWidth, 280),
      height: CHART_HEIGHT,
      series: [{}, ...series],
      // Half a minute either side, so the first and last bars are whole.
      scales: {
        x: { time: true, range: (_u, min, max) => [min - 30, max + 30] },
        y: { range: (_u, _min, max) => [0, Math.max(yMax(), max * 1.1, 1)] },
      },
      axes: [{}, { size: 50 }],
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
    };
  }

  /** Draws (or redraws) a uPlot chart in `id`; the container says how many points and their sum, for tests. */
  function drawChart(id, series, data, yMax) {
    const container = element(id);
    const xs = minuteStarts(data[0].length);
    const all = [xs, ...data];
    if (!charts[id]) charts[id] = new uPlot(chartOptions(container, series, yMax), all, container);
    else charts[id].setData(all);
    container.dataset.points = String(xs.length);
    container.dataset.total = String(data[0].reduce((sum, value) => sum + (value || 0), 0));
  }

  window.addEventListener('resize', () => {
    for (const [id, chart] of Object.entries(charts)) {
      chart.setSize({ width: Math.max(element(id).clientWidth, 280), height: CHART_HEIGHT });
    }
  });

  /** Bars (uPlot's own path builder); `align` -1 or 1 puts two series side by side. */
  const bars = (align = 0) =>
    uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [align === 0 ? 0.6 : 0.35, 40], align }) : undefined;
  /** An idle minute has no bar rather than a flat one. */
  const noZero = (value) => (value === 0 ? null : value);

  function renderStats(stats) {
    const calls = stats.callsPerMinute;
    const limit = stats.limitPerMinute;
    drawChart(
      'calls-chart',
      [
        {
          label: 'Calls',
          stroke: COLOURS.calls,
          fill: 'rgba(37, 99, 235, 0.25)',
          paths: bars(),
          points: { show: false },
        },
        { label: 'Limit', stroke: COLOURS.limit, dash: [6, 4], width: 2, points: { show: false } },
      ],
      [calls.map(noZero), calls.map(() => limit)],
      () => limit * 1.1,
    );
    const { succeeded, failed } = stats.recordsPerMinute;
    drawChart(
      'records-chart',
      [
        {
          label: 'Succeeded',
          stroke: COLOURS.succeeded,
          fill: 'rgba(22, 163, 74, 0.35)',
          paths: bars(-1),
          points: { show: false },
        },
        {
          label: 'Failed',
          stroke: COLOURS.failed,
          fill: 'rgba(220, 38, 38, 0.35)',
          paths: bars(1),
          points: { show: false },
        },
      ],
      // Side by side, each half a minute wide.
      [succeeded.map(noZero), failed.map(noZero)],
      () => 0,
    );
    // The last value is the minute under way: the one before says the pace.
    const current = calls.length > 0 ? calls[calls.length - 1] : 0;
    const full = calls.length > 1 ? calls[calls.length - 2] : current;
    setText('calls-last-minute', count(full), full);
    setText('calls-this-minute', count(current), current);
    setText('limit-per-minute', count(limit), limit);
    setText('latency-p50', milliseconds(stats.latencyMs.p50), stats.latencyMs.p50 ?? '');
    setText('latency-p99', milliseconds(stats.latencyMs.p99), stats.latencyMs.p99 ?? '');
    const queue = stats.queue || {};
    setText('queue-waiting', orDash(queue.waiting), queue.waiting);
    setText('queue-in-flight', orDash(queue.inFlight), queue.inFlight);
    const files = stats.files || {};
    setText('files-running', orDash(files.running), files.running);
    setText('files-waiting', orDash(files.waiting), files.waiting);
    setText('files-paused', orDash(files.paused), files.paused);
    renderErrors(stats.errorsByCode);
  }

  function setText(id, text, value) {
    const node = element(id);
    node.textContent = text;
    if (value !== undefined) node.dataset.value = String(value);
  }

  function renderErrors(errorsByCode) {
    const entries = Object.entries(errorsByCode)
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const tbody = element('errors-by-code').tBodies[0];
    tbody.replaceChildren(
      ...entries.map(([code, n]) => {
        const row = make('tr', { 'data-code': code });
        row.append(make('td', {}, code), make('td', { class: 'num', 'data-value': String(n) }, count(n)));
        return row;
      }),
    );
    element('errors-empty').hidden = entries.length > 0;
  }

  /** A finished file's failed records do not change until it runs again: kept per file and finish time. */
  const failureCache = new Map();

  async function failedRecords(file) {
    const key = `${file.fileId}@${file.finishedAt}`;
    if (!failureCache.has(key)) {
      const page = await api(
        `/v1/files/${encodeURIComponent(file.fileId)}/records?outcome=failed&limit=${FAILURES_PER_FILE}`,
      );
      check(page && Array.isArray(page.records), 'GET /v1/files/{id}/records');
      failureCache.set(key, page.records.slice(0, FAILURES_PER_FILE));
    }
    return failureCache.get(key);
  }

  async function renderFailures(finished) {
    const withFailures = finished.filter((file) => file.failed > 0).slice(0, FAILURE_FILES);
    const lists = await Promise.all(withFailures.map(failedRecords));
    const blocks = withFailures.map((file, i) => {
      const block = make('article', { 'data-failures-for': file.fileId, class: 'failures' });
      const more = file.failed > lists[i].length ? ` (first ${lists[i].length} of ${count(file.failed)})` : '';
      block.append(make('h3', {}, `${file.name}${more}`));
      const table = make('table');
      const head = make('tr');
      for (const title of ['Line', 'Record', 'Code', 'Error']) head.append(make('th', { scope: 'col' }, title));
      table.append(make('thead'), make('tbody'));
      table.tHead.append(head);
      for (const record of lists[i]) {
        const row = make('tr', { 'data-line': String(record.line) });
        row.append(
          make('td', { class: 'num' }, String(record.line)),
          make('td', {}, record.recordId),
          make('td', {}, orDash(record.code)),
          make('td', {}, orDash(record.error)),
        );
        table.tBodies[0].append(row);
      }
      block.append(table);
      return block;
    });
    element('recent-failures').replaceChildren(...blocks);
    element('failures-empty').hidden = blocks.length > 0;
  }

  // The detail of one file, chosen by its name: its phases, calls and reports.
  let selected = null;

  function selectFile(fileId) {
    selected = fileId;
    element('file-detail').hidden = false;
    element('detail-title').textContent = 'Loading…';
    void refreshNow();
  }

  element('detail-close').addEventListener('click', () => {
    selected = null;
    element('file-detail').hidden = true;
  });

  async function renderDetail() {
    if (!selected) return;
    const fileId = selected;
    let detail;
    try {
      detail = await api(`/v1/files/${encodeURIComponent(fileId)}`);
    } catch (error) {
      // A file gone from the catalogue closes its detail; any other error is the page's error.
      if (error instanceof ApiError && error.status === 404) {
        selected = null;
        element('file-detail').hidden = true;
        return;
      }
      throw error;
    }
    check(detail && Array.isArray(detail.phases), 'GET /v1/files/{id}');
    if (selected !== fileId) return;
    element('detail-title').textContent = detail.name;
    const facts = [
      ['File id', detail.fileId],
      ['Partner', detail.partner],
      ['Kind', detail.kind],
      ['Status', detail.status],
      ['Calls made / remaining', `${count(detail.calls.made)} / ${count(detail.calls.remaining)}`],
      ['Landed', clock(detail.landedAt)],
      ['Started', clock(detail.startedAt)],
      ['Finished', clock(detail.finishedAt)],
      ['Summary', orDash(detail.reports.summary)],
      ['Failed records', orDash(detail.reports.failedRecords)],
    ];
    element('detail-facts').replaceChildren(
      ...facts.flatMap(([term, value]) => [make('dt', {}, term), make('dd', {}, value)]),
    );
    element('detail-phases').tBodies[0].replaceChildren(
      ...detail.phases.map((phase) => {
        const row = make('tr', { 'data-phase': phase.phase });
        row.append(
          make('td', {}, phase.phase),
          make('td', { class: 'num' }, orDash(phase.batches)),
          make('td', { class: 'num' }, count(phase.answered)),
          make('td', { class: 'num' }, count(phase.calls)),
        );
        return row;
      }),
    );
  }

  // Errors and the token.
  function showError(message) {
    const box = element('error');
    box.hidden = !message;
    box.textContent = message || '';
  }

  function askForToken(reason) {
    stop();
    token.clear();
    element('dashboard').hidden = true;
    element('token-reason').textContent = reason;
    element('token-form').hidden = false;
    element('updated').textContent = 'Waiting for the token';
    element('token-input').focus();
  }

  element('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = element('token-input').value.trim();
    if (!value) return;
    token.set(value);
    element('token-input').value = '';
    element('token-form').hidden = true;
    start();
  });

  /** `/#token=...` (the link `ingest up` prints): kept for this tab, then taken out of the address bar. */
  function takeTokenFromAddress() {
    const match = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
    if (!match) return;
    let value = match[1];
    try {
      value = decodeURIComponent(value);
    } catch {
      // Not percent-encoded: taken as it is.
    }
    if (value) token.set(value);
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }

  // The refresh loop: one look at a time, the next planned REFRESH_MS after the start of the last.
  let timer;
  let running = false;
  let generation = 0;

  async function look() {
    const [list, stats] = await Promise.all([api('/v1/files?limit=100'), api(`/v1/stats?minutes=${STATS_MINUTES}`)]);
    const finished = renderFiles(checkFileList(list));
    renderStats(checkStats(stats));
    await Promise.all([renderFailures(finished), renderDetail()]);
  }

  async function tick(mine) {
    const started = Date.now();
    try {
      await look();
      if (mine !== generation) return;
      showError(null);
      element('dashboard').hidden = false;
      element('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (mine !== generation) return;
      if (error instanceof ApiError && error.status === 401) {
        askForToken(
          token.get()
            ? 'The API refused this token: give the one `ingest up` printed this time it started.'
            : 'The page reads the operations API, which needs the token that `ingest up` printed.',
        );
        return;
      }
      const code = error instanceof ApiError ? error.code : 'Error';
      showError(`${code}: ${error && error.message ? error.message : String(error)}`);
      element('updated').textContent = `Last look failed at ${new Date().toLocaleTimeString()}`;
    }
    if (mine === generation && running) {
      timer = setTimeout(() => tick(mine), Math.max(0, REFRESH_MS - (Date.now() - started)));
    }
  }

  function start() {
    stop();
    running = true;
    void tick(generation);
  }

  function stop() {
    running = false;
    generation += 1;
    clearTimeout(timer);
  }

  /** A look now (a file chosen), the loop going on from it. */
  function refreshNow() {
    if (running) start();
  }

  takeTokenFromAddress();
  if (token.get()) start();
  else askForToken('The page reads the operations API, which needs the token that `ingest up` printed.');
})();
