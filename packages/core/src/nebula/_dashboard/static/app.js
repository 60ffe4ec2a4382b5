// The Nebula dashboard: one page, hash routes, every view drawn from the JSON API that the
// `nebula` command line reads too. Views refresh every 2 seconds.
"use strict";

const REFRESH_MS = 2000;
const main = document.getElementById("main");
const live = document.getElementById("live");
const tableState = {};  // per table: {sort, desc, text, state}
let timer = null;
let drawing = 0;
let inflight = 0;  // draws started and not yet settled
let appliedHash = null;

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, c => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

async function api(path) {
  const response = await fetch(path, {credentials: "same-origin"});
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* text */ }
    throw new Error(`${response.status}: ${message}`);
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

function badge(state) {
  return state ? `<span class="badge s-${esc(state)}">${esc(state)}</span>` : "-";
}
function short(id) { return id ? esc(String(id).slice(0, 12)) : "-"; }
function bytes(n) {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}
function when(ms) { return ms ? new Date(ms).toLocaleTimeString() : "-"; }
function duration(ms) {
  if (ms === null || ms === undefined) return "-";
  return ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

// ------------------------------------------------------------------ tables

// columns: [{key, label, render?(row), sortValue?(row)}]; rows link to href(row) if given.
function table(id, rows, columns, {href = null, states = null} = {}) {
  const st = tableState[id] || (tableState[id] = {sort: null, desc: false, text: "", state: ""});
  let shown = rows.filter(row => {
    if (st.state && row.state !== st.state && row.status !== st.state) return false;
    if (!st.text) return true;
    const needle = st.text.toLowerCase();
    return columns.some(c => String(row[c.key] ?? "").toLowerCase().includes(needle));
  });
  if (st.sort) {
    const column = columns.find(c => c.key === st.sort);
    const value = column && column.sortValue ? column.sortValue : (r => r[st.sort]);
    shown = shown.slice().sort((a, b) => {
      const x = value(a), y = value(b);
      const order = (x ?? "") < (y ?? "") ? -1 : (x ?? "") > (y ?? "") ? 1 : 0;
      return st.desc ? -order : order;
    });
  }
  const options = states ? `<select data-table="${id}" class="state-filter">
      <option value="">all states</option>
      ${states.map(s => `<option ${s === st.state ? "selected" : ""}>${esc(s)}</option>`).join("")}
    </select>` : "";
  const head = columns.map(c => {
    const cls = st.sort === c.key ? (st.desc ? "sorted-desc" : "sorted-asc") : "";
    return `<th data-table="${id}" data-key="${c.key}" class="${cls}">${esc(c.label)}</th>`;
  }).join("");
  const body = shown.map(row => {
    const link = href ? ` class="link" data-href="${esc(href(row))}"` : "";
    return `<tr${link}>${columns.map(c =>
      `<td>${c.render ? c.render(row) : esc(row[c.key] ?? "-")}</td>`).join("")}</tr>`;
  }).join("");
  return `<div class="toolbar">
      <input type="search" placeholder="Filter" data-table="${id}" class="text-filter"
        value="${esc(st.text)}">${options}
      <span class="count">${shown.length} of ${rows.length}</span></div>
    <table id="${id}" data-testid="${id}"><thead><tr>${head}</tr></thead>
    <tbody>${body || `<tr><td colspan="${columns.length}" class="muted">Nothing yet.</td></tr>`}
    </tbody></table>`;
}

main.addEventListener("click", event => {
  const th = event.target.closest("th[data-key]");
  if (th) {
    const st = tableState[th.dataset.table];
    st.desc = st.sort === th.dataset.key ? !st.desc : false;
    st.sort = th.dataset.key;
    draw();
    return;
  }
  const row = event.target.closest("tr[data-href]");
  if (row && !event.target.closest("a")) location.hash = row.dataset.href;
});
main.addEventListener("input", event => {
  const target = event.target;
  if (target.classList.contains("text-filter")) {
    tableState[target.dataset.table].text = target.value;
    redrawKeepingFocus(target.dataset.table);
  } else if (target.classList.contains("state-filter")) {
    tableState[target.dataset.table].state = target.value;
    draw();
  }
});

function redrawKeepingFocus(tableId) {
  // Only the draw that replaced the input takes focus back: one a newer draw superseded
  // (a click on a header, say) must not steal it later, which would pause the refresh.
  draw().then(rendered => {
    if (!rendered) return;
    const input = main.querySelector(`input.text-filter[data-table="${tableId}"]`);
    if (input) { input.focus(); input.setSelectionRange(input.value.length, input.value.length); }
  });
}

// ------------------------------------------------------------------ charts

function chart(title, samples, series, {max = null, format = v => v.toFixed(1)} = {}) {
  const width = 600, height = 120;
  if (samples.length < 2) return `<div class="card chart"><h2>${esc(title)}</h2>
    <p class="muted">Collecting samples&hellip;</p></div>`;
  const t0 = samples[0].time, t1 = samples[samples.length - 1].time;
  const top = max ?? Math.max(1e-9, ...samples.flatMap(s => series.map(x => s[x.key] ?? 0)));
  const colors = ["#4f46e5", "#059669", "#d97706"];
  const lines = series.map((x, i) => {
    const points = samples.map(s => {
      const px = ((s.time - t0) / Math.max(1e-9, t1 - t0)) * width;
      const py = height - ((s[x.key] ?? 0) / top) * (height - 6) - 3;
      return `${px.toFixed(1)},${py.toFixed(1)}`;
    }).join(" ");
    return `<polyline fill="none" stroke="${colors[i]}" stroke-width="2" points="${points}"/>`;
  }).join("");
  const last = samples[samples.length - 1];
  const legend = series.map((x, i) =>
    `<span style="color:${colors[i]}">&#9632;</span> ${esc(x.label)}: ${format(last[x.key] ?? 0)}`
  ).join(" &nbsp; ");
  return `<div class="card chart" data-testid="chart"><h2>${esc(title)}</h2>
    <svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none">${lines}</svg>
    <div class="legend">${legend} &nbsp; (last ${Math.round((t1 - t0) / 60)} min)</div></div>`;
}

function usage(label, used, total, format = v => v) {
  const share = total ? Math.min(100, (100 * used) / total) : 0;
  return `<div><div>${esc(label)} <span class="muted">${format(used)} / ${format(total)}</span></div>
    <div class="bar"><div style="width:${share.toFixed(1)}%"></div></div></div>`;
}

// ------------------------------------------------------------------- views

const TASK_STATES = ["PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER",
  "RUNNING", "FINISHED", "FAILED"];

async function overview() {
  const [status, history, summary, failed] = await Promise.all([
    api("/api/cluster_status"), api("/api/cluster_status/history"),
    api("/api/v0/tasks/summarize"), api("/api/v0/tasks?filter=state=FAILED&limit=10&detail=1"),
  ]);
  const samples = history.samples;
  const t = samples.length ? samples[samples.length - 1] : null;
  const counts = {};
  for (const group of Object.values(summary.cluster.summary)) {
    for (const [state, n] of Object.entries(group.state_counts)) counts[state] = (counts[state] || 0) + n;
  }
  const alive = status.nodes.filter(n => n.state === "ALIVE").length;
  const cards = `<div class="grid">
    <div class="card"><h2>Nodes</h2><div class="stat" data-testid="nodes-alive">${alive}</div>
      <div class="muted">${status.nodes.length - alive} dead</div></div>
    <div class="card"><h2>Tasks</h2><div class="stat">${Object.values(counts).reduce((a, b) => a + b, 0)}</div>
      <div class="muted">${counts.RUNNING || 0} running, ${counts.FINISHED || 0} finished,
      <a href="#/tasks?state=FAILED">${counts.FAILED || 0} failed</a></div></div>
    <div class="card"><h2>Use</h2>${t ? usage("CPU", t.CPU_used, t.CPU_total) +
      usage("GPU", t.GPU_used, t.GPU_total) + usage("Memory", t.memory_used, t.memory_total, bytes) +
      usage("Object store", t.object_store_used, t.object_store_total, bytes) : "&hellip;"}</div>
  </div>`;
  const charts = `<div class="grid">
    ${chart("CPUs in use", samples, [{key: "CPU_used", label: "used"}, {key: "CPU_total", label: "total"}])}
    ${chart("Host load (%)", samples, [{key: "host_cpu_percent", label: "CPU"},
      {key: "host_memory_percent", label: "memory"}], {max: 100})}
    ${chart("Object store", samples, [{key: "object_store_used", label: "used"},
      {key: "spilled_bytes", label: "spilled"}], {format: bytes})}
  </div>`;
  const failures = failed.result.length ? `<div class="card" data-testid="recent-failures">
      <h2>Recent failures</h2>${table("failures", failed.result, [
        {key: "name", label: "Task"}, {key: "error_type", label: "Error"},
        {key: "end_time_ms", label: "Ended", render: r => when(r.end_time_ms)},
      ], {href: r => `#/tasks/${r.task_id}`})}</div>` : "";
  const nodes = `<div class="card"><h2>Nodes</h2>${table("nodes", status.nodes, [
    {key: "node_id", label: "Node", render: r => short(r.node_id) + (r.is_head_node ? " (head)" : "")},
    {key: "node_ip", label: "Address"}, {key: "state", label: "State", render: r => badge(r.state)},
    {key: "cpu", label: "CPU used", render: r => cpu(r), sortValue: r => cpuUsed(r)},
    {key: "store", label: "Object store", render: r => r.store ?
      `${bytes(r.store.used)} / ${bytes(r.store.capacity)}` : "-"},
    {key: "workers", label: "Workers", render: r => r.store ? r.store.workers : "-"},
  ])}</div>`;
  return `<h1>Cluster</h1>${cards}${failures}${charts}${nodes}`;
}
function cpuUsed(node) {
  return node.store ? node.store.total.CPU - (node.store.available_resources.CPU || 0) : 0;
}
function cpu(node) { return node.store ? `${cpuUsed(node)} / ${node.store.total.CPU}` : "-"; }

async function jobs() {
  const rows = await api("/api/jobs/");
  return `<h1>Jobs</h1>${table("jobs", rows, [
    {key: "submission_id", label: "Submission", render: r => esc(r.submission_id || "-")},
    {key: "job_id", label: "Job", render: r => esc(r.job_id || "-")},
    {key: "type", label: "Type"}, {key: "status", label: "Status", render: r => badge(r.status)},
    {key: "entrypoint", label: "Entrypoint"},
    {key: "start_time", label: "Started", render: r => when(r.start_time)},
    {key: "end_time", label: "Ended", render: r => when(r.end_time)},
  ], {href: r => `#/jobs/${r.submission_id || r.job_id}`,
      states: ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"]})}`;
}

async function job(id) {
  const info = await api(`/api/jobs/${encodeURIComponent(id)}`);
  let logs = "";
  if (info.submission_id) {
    const found = await api(`/api/jobs/${encodeURIComponent(info.submission_id)}/logs`);
    logs = `<div class="card"><h2>Output</h2><pre data-testid="job-logs">${esc(found.logs) ||
      "(no output yet)"}</pre></div>`;
  }
  const tasks = info.job_id ? (await api(`/api/v0/tasks?filter=job_id=${info.job_id}&limit=500&detail=1`)).result : [];
  return `<h1>Job ${esc(info.submission_id || info.job_id)} ${badge(info.status)}</h1>
    <div class="card"><dl class="kv">
      <dt>Entrypoint</dt><dd>${esc(info.entrypoint)}</dd>
      <dt>Message</dt><dd>${esc(info.message || "-")}</dd>
      <dt>Job id</dt><dd>${esc(info.job_id || "-")}</dd>
      <dt>Started</dt><dd>${when(info.start_time)}</dd><dt>Ended</dt><dd>${when(info.end_time)}</dd>
      <dt>Runtime env</dt><dd>${esc(JSON.stringify(info.runtime_env || {}))}</dd>
    </dl></div>${logs}<div class="card"><h2>Tasks</h2>${taskTable("job-tasks", tasks)}</div>`;
}

function taskTable(id, rows) {
  return table(id, rows, [
    {key: "name", label: "Name"}, {key: "state", label: "State", render: r => badge(r.state)},
    {key: "type", label: "Type"},
    {key: "duration_ms", label: "Duration", render: r => duration(r.duration_ms)},
    {key: "worker_pid", label: "Worker pid"},
    {key: "node_id", label: "Node", render: r => short(r.node_id)},
    {key: "error_type", label: "Error", render: r => r.error_type ?
      `<span class="error">${esc(r.error_type)}</span>` : "-"},
    {key: "task_id", label: "Task id", render: r => short(r.task_id)},
    {key: "attempt_number", label: "Attempt"},
  ], {href: r => `#/tasks/${r.task_id}`, states: TASK_STATES});
}

async function tasks(query) {
  const state = query.get("state");
  if (state && appliedHash !== location.hash) {  // once per visit: the menu may change it
    appliedHash = location.hash;
    (tableState.tasks || (tableState.tasks = {sort: null, desc: false, text: ""})).state = state;
  }
  const found = await api("/api/v0/tasks?limit=1000&detail=1");
  const dropped = Object.values(found.dropped || {}).reduce((a, b) => a + b, 0);
  const note = dropped ? `<p class="muted">${dropped} older task records were dropped
    (the cluster keeps a bounded number per job).</p>` : "";
  return `<h1>Tasks</h1>${note}${taskTable("tasks", found.result)}`;
}

async function task(id) {
  const attempts = await api(`/api/v0/tasks/${encodeURIComponent(id)}`);
  const blocks = attempts.map(a => `<div class="card" data-testid="task-attempt">
    <h2>${esc(a.name)} &mdash; attempt ${a.attempt_number} ${badge(a.state)}</h2>
    <dl class="kv">
      <dt>Task id</dt><dd>${esc(a.task_id)}</dd><dt>Type</dt><dd>${esc(a.type)}</dd>
      <dt>Job</dt><dd><a href="#/jobs/${esc(a.job_id)}">${esc(a.job_id)}</a></dd>
      <dt>Actor</dt><dd>${a.actor_id ? `<a href="#/actors/${esc(a.actor_id)}">${esc(a.actor_id)}</a>` : "-"}</dd>
      <dt>Node</dt><dd>${esc(a.node_id || "-")}</dd><dt>Worker pid</dt><dd>${esc(a.worker_pid ?? "-")}</dd>
      <dt>Resources</dt><dd>${esc(JSON.stringify(a.required_resources))}</dd>
      <dt>Duration</dt><dd>${duration(a.duration_ms)}</dd>
      <dt>States</dt><dd>${a.events.map(e => `${esc(e.state)} ${when(e.created_ms)}`).join(" &rarr; ")}</dd>
    </dl>
    ${a.error_message ? `<h2 style="margin-top:14px">Error: ${esc(a.error_type)}</h2>
      <pre class="traceback" data-testid="traceback">${esc(a.error_message)}</pre>` : ""}
    ${a.worker_pid ? `<p><a href="#/logs/${esc(a.node_id)}/worker-${esc(a.worker_pid)}.out">Worker output</a>
      &middot; <a href="#/logs/${esc(a.node_id)}/worker-${esc(a.worker_pid)}.err">errors</a></p>` : ""}
  </div>`).join("");
  return `<h1>Task</h1>${blocks}`;
}

async function actors() {
  const rows = (await api("/api/v0/actors?limit=1000&detail=1")).result;
  return `<h1>Actors</h1>${table("actors", rows, [
    {key: "class_name", label: "Class"}, {key: "name", label: "Name", render: r => esc(r.name || "-")},
    {key: "state", label: "State", render: r => badge(r.state)}, {key: "pid", label: "Pid"},
    {key: "node_id", label: "Node", render: r => short(r.node_id)},
    {key: "restarts", label: "Restarts"},
    {key: "death_cause", label: "Death cause", render: r => esc(r.death_cause || "-")},
    {key: "actor_id", label: "Actor id", render: r => short(r.actor_id)},
  ], {href: r => `#/actors/${r.actor_id}`, states: ["PENDING", "ALIVE", "RESTARTING", "DEAD"]})}`;
}

async function actor(id) {
  const found = (await api(`/api/v0/actors?filter=actor_id=${id}&detail=1`)).result;
  if (!found.length) return `<h1>Actor</h1><p class="error">There is no actor ${esc(id)}.</p>`;
  const a = found[0];
  const calls = (await api(`/api/v0/tasks?filter=actor_id=${id}&limit=500&detail=1`)).result;
  let log = "";
  if (a.pid && a.node_id) {
    try { log = await api(`/api/v0/logs/file?actor_id=${id}&lines=200`); } catch (e) { log = String(e); }
  }
  return `<h1>${esc(a.class_name)} ${badge(a.state)}</h1><div class="card"><dl class="kv">
    <dt>Actor id</dt><dd>${esc(a.actor_id)}</dd><dt>Name</dt><dd>${esc(a.name || "-")}</dd>
    <dt>Pid</dt><dd>${esc(a.pid ?? "-")}</dd><dt>Node</dt><dd>${esc(a.node_id || "-")}</dd>
    <dt>Restarts</dt><dd>${esc(a.restarts)}</dd><dt>Death cause</dt><dd>${esc(a.death_cause || "-")}</dd>
    </dl></div><div class="card"><h2>Output</h2><pre>${esc(log) || "(none)"}</pre></div>
    <div class="card"><h2>Calls</h2>${taskTable("actor-tasks", calls)}</div>`;
}

async function placementGroups() {
  const rows = (await api("/api/v0/placement_groups?limit=1000&detail=1")).result;
  return `<h1>Placement groups</h1>${table("placement-groups", rows, [
    {key: "placement_group_id", label: "Id", render: r => short(r.placement_group_id)},
    {key: "name", label: "Name", render: r => esc(r.name || "-")},
    {key: "state", label: "State", render: r => badge(r.state)}, {key: "strategy", label: "Strategy"},
    {key: "bundles", label: "Bundles", render: r => esc(r.bundles.map(b =>
      Object.entries(b.resources).map(([k, v]) => `${k}:${v}`).join(",")).join(" | ")),
      sortValue: r => r.bundles.length},
  ], {states: ["PENDING", "CREATED", "REMOVED"]})}`;
}

async function logs() {
  const byNode = await api("/api/v0/logs");
  const blocks = Object.entries(byNode).map(([node, files]) => `<div class="card files">
    <h2>Node ${short(node)}</h2>${files.map(f => `<a href="#/logs/${esc(node)}/${esc(f.filename)}">
      ${esc(f.filename)}</a>`).join("")}</div>`).join("");
  return `<h1>Logs</h1><div class="grid">${blocks || '<p class="muted">No log files.</p>'}</div>`;
}

async function logFile(node, filename) {
  const text = await api(`/api/v0/logs/file?node_id=${node}&filename=${encodeURIComponent(filename)}&lines=1000`);
  return `<h1>${esc(filename)}</h1><p class="muted">Node ${esc(node)}; the last 1000 lines,
    refreshed as they come.</p><pre data-testid="log-text">${esc(text) || "(empty)"}</pre>`;
}

// ------------------------------------------------------------------ router

function route() {
  const [path, queryText] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  const query = new URLSearchParams(queryText || "");
  const page = parts[0] || "overview";
  const views = {
    "overview": () => overview(),
    "jobs": () => parts[1] ? job(parts[1]) : jobs(),
    "tasks": () => parts[1] ? task(parts[1]) : tasks(query),
    "actors": () => parts[1] ? actor(parts[1]) : actors(),
    "placement-groups": () => placementGroups(),
    "logs": () => parts[2] ? logFile(parts[1], parts.slice(2).join("/")) : logs(),
  };
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.page === page);
  }
  return views[page] || views.overview;
}

async function draw() {
  const ticket = ++drawing;
  const view = route();
  inflight += 1;
  try {
    const html = await view();
    if (ticket !== drawing) return false;  // a newer draw started meanwhile
    const scroll = window.scrollY;
    main.innerHTML = html;
    window.scrollTo(0, scroll);
    live.classList.remove("stale");
    live.textContent = `live, ${new Date().toLocaleTimeString()}`;
    return true;
  } catch (error) {
    if (ticket !== drawing) return false;
    live.classList.add("stale");
    live.textContent = "disconnected";
    main.innerHTML = `<p class="error" data-testid="error">Could not load this page: ${esc(error.message)}</p>`;
    return false;
  } finally {
    inflight -= 1;
  }
}

function schedule() {
  clearInterval(timer);
  timer = setInterval(() => {
    const typing = document.activeElement && document.activeElement.tagName === "INPUT";
    const selecting = String(window.getSelection()).length > 0;
    // A tick never supersedes a draw still loading: on a slow cluster a refresh that takes
    // longer than the period would otherwise cancel every draw and the page would freeze.
    if (!typing && !selecting && !document.hidden && inflight === 0) draw();
  }, REFRESH_MS);
}

window.addEventListener("hashchange", () => { window.scrollTo(0, 0); draw(); });
draw();
schedule();
