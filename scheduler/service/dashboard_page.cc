// The dashboard's page (dashboard.h): HTML, CSS and JavaScript in one
// string, so the scheduler serves it with nothing fetched from elsewhere.
// It reads /api/... with the token the user gives once (kept in the tab's
// sessionStorage, or given as #token=... in the address) and draws every
// page itself; every string from the server is inserted as text, never as
// HTML.
#include "scheduler/service/dashboard.h"

namespace deja {

const char kDashboardPage[] = R"DEJA(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Deja</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
:root{--fg:#1d2430;--muted:#5b6472;--line:#dde2ea;--bg:#f6f8fb;--accent:#2a62c9}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;gap:24px;align-items:center;padding:10px 24px;background:#1d2430;color:#fff}
header b{font-size:18px;letter-spacing:.5px}header a{color:#cfd8e6;text-decoration:none;margin-right:16px}
header a.on{color:#fff;border-bottom:2px solid #fff}main{padding:20px 24px;max-width:1200px}
h1{font-size:20px;margin:0 0 12px}h2{font-size:15px;margin:20px 0 8px;color:var(--muted)}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f6;font-weight:600;font-size:12px;color:var(--muted)}a{color:var(--accent)}
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:#8a94a6}
.SUCCEEDED,.NODE_SUCCEEDED,.PIPELINE_SUCCEEDED{background:#2e8b57}.FAILED,.NODE_FAILED,.PIPELINE_FAILED,.NODE_UPSTREAM_FAILED{background:#c0392b}
.RUNNING,.MATERIALIZING,.NODE_RUNNING,.PIPELINE_RUNNING{background:#2a62c9}.QUEUED,.ASSIGNED,.WAITING,.NODE_PENDING{background:#c58b00}
.CANCELLED,.NODE_CANCELLED,.PIPELINE_CANCELLED{background:#7f8c8d}.reused{background:#6c3fc5}
.banner{background:#efe8fb;border:1px solid #cdb9f2;color:#43218f;padding:10px 14px;border-radius:6px;margin:10px 0;font-weight:600}
.error{background:#fdecea;border:1px solid #f5c6c0;color:#8c1d12;padding:10px 14px;border-radius:6px}
pre{background:#10151d;color:#d9e1ec;padding:10px;border-radius:6px;overflow:auto;max-height:320px;margin:0}
form.filters{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:12px}form.filters input,form.filters select{padding:5px 8px}
.kv td:first-child{width:160px;color:var(--muted)}.muted{color:var(--muted)}.cards{display:flex;gap:12px;margin-bottom:12px}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:10px 16px;min-width:160px}.card b{display:block;font-size:22px}
svg text{font:12px system-ui,sans-serif}
</style></head>
<body><header><b>Deja</b><nav id="nav"><a href="#jobs">Jobs</a><a href="#pipelines">Pipelines</a><a href="#stats">Stats</a><a href="#workers">Workers</a></nav></header>
<main id="main">Loading…</main>
<script>
"use strict";
const main = document.getElementById("main");
// The token: given once (sign-in form or #token=...), kept for this tab.
function takeTokenFromAddress() {
  const m = location.hash.match(/[#&?]token=([^&]*)/);
  if (!m) return;
  sessionStorage.setItem("deja_token", decodeURIComponent(m[1]));
  history.replaceState(null, "", location.hash.replace(/[&?]?token=[^&]*/, "").replace(/^#&/, "#") || "#jobs");
}
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}
function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}
// The page's content; null and undefined stand for nothing.
function show(...nodes) { main.replaceChildren(...nodes.flat().filter((x) => x !== null && x !== undefined)); }
class SignIn extends Error {}
async function api(path) {
  const token = sessionStorage.getItem("deja_token");
  const r = await fetch(path, {headers: token ? {Authorization: "Bearer " + token} : {}});
  const body = await r.json().catch(() => ({error: r.statusText}));
  if (r.status === 401) throw new SignIn(body.error);
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
const n = (v) => Number(v || 0);
function duration(ms) {
  ms = n(ms); if (ms < 1000) return ms + "ms";
  let s = Math.round(ms / 1000); const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60); s %= 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}
function when(ms) { return n(ms) ? new Date(n(ms)).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "-"; }
function bytes(b) { b = n(b); const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (b >= 1024 && i < 4) { b /= 1024; i++; } return (i ? b.toFixed(1) : b) + " " + u[i]; }
function state(s, reused) { return el("span", {class: "state " + (reused ? "reused" : s)}, reused ? "REUSED" : s); }
function jobLink(id) { return id ? el("a", {href: "#job?id=" + encodeURIComponent(id)}, id) : "-"; }
function params() { return new URLSearchParams((location.hash.split("?")[1]) || ""); }
function reuseBanner(job) {
  if (!job.reused_from) return null;
  return el("div", {class: "banner", id: "reuse-banner"}, `reused from ${job.reused_from}, saved ${duration(job.time_saved_ms)}`);
}

async function jobsPage() {
  const p = params();
  const form = el("form", {class: "filters", onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const f of ["project", "state", "app", "label"]) { const v = form.elements[f].value.trim(); if (v) q.set(f, v); }
    location.hash = "#jobs?" + q.toString();
  }},
    el("input", {name: "project", placeholder: "project", value: p.get("project") || ""}),
    el("input", {name: "state", placeholder: "state (QUEUED,RUNNING…)", value: p.get("state") || ""}),
    el("input", {name: "app", placeholder: "app", value: p.get("app") || ""}),
    el("input", {name: "label", placeholder: "label K=V", value: p.get("label") || ""}),
    el("button", {type: "submit"}, "Filter"));
  const q = new URLSearchParams(p); q.set("state", (p.get("state") || "").toUpperCase());
  const data = await api("/api/jobs?" + q.toString());
  const rows = data.jobs.map((j) => el("tr", {class: "job-row"},
    el("td", {}, jobLink(j.job_id)), el("td", {}, j.spec.project), el("td", {}, j.spec.app.name),
    el("td", {}, state(j.state, j.reused_from)), el("td", {}, j.worker_id || "-"), el("td", {}, when(j.created_at_ms)),
    el("td", {}, j.reused_from ? "saved " + duration(j.time_saved_ms) : n(j.run_time_ms) ? duration(j.run_time_ms) : "-"),
    el("td", {}, jobLink(j.reused_from))));
  const more = data.next_cursor ? (() => { const m = new URLSearchParams(p); m.set("cursor", data.next_cursor); return el("p", {}, el("a", {href: "#jobs?" + m.toString(), id: "next-page"}, "Older jobs →")); })() : null;
  show(el("h1", {}, "Jobs"), form,
    el("table", {id: "jobs"}, el("tr", {}, ...["Job", "Project", "App", "State", "Worker", "Submitted", "Run time", "Reused from"].map((h) => el("th", {}, h))), rows),
    data.jobs.length ? null : el("p", {class: "muted"}, "No job matches."), more);
}

function timeline(job) {
  const t0 = n(job.created_at_ms), t1 = n(job.started_at_ms) || t0, t2 = n(job.finished_at_ms) || Date.now();
  const total = Math.max(t2 - t0, 1), w = 800, x = (t) => 10 + (t - t0) / total * w;
  return svg("svg", {width: 840, height: 58, id: "timeline"},
    svg("rect", {x: x(t0), y: 10, width: Math.max(x(t1) - x(t0), 2), height: 16, fill: "#c58b00"}),
    svg("rect", {x: x(t1), y: 10, width: Math.max(x(t2) - x(t1), 2), height: 16, fill: job.reused_from ? "#6c3fc5" : job.state === "FAILED" ? "#c0392b" : "#2e8b57"}),
    svg("text", {x: 10, y: 44}, "submitted " + when(t0)),
    svg("text", {x: 300, y: 44}, (job.reused_from ? "copy began " : "started ") + when(job.started_at_ms)),
    svg("text", {x: 600, y: 44}, "ended " + when(job.finished_at_ms)));
}

async function jobPage() {
  const id = params().get("id");
  const data = await api("/api/job?id=" + encodeURIComponent(id));
  const j = data.job, x = data.explain;
  const kv = (k, v) => el("tr", {}, el("td", {}, k), el("td", {}, v));
  const files = (data.files || []).map((f) => el("tr", {}, el("td", {}, f.path), el("td", {}, bytes(f.size)),
    el("td", {class: "muted"}, "0" + (n(f.mode) & 0o777).toString(8)), el("td", {class: "muted"}, (f.digest || "").slice(0, 16))));
  const outputs = (j.outputs || []).map((o) => el("tr", {}, el("td", {}, o.path), el("td", {}, bytes(o.size)), el("td", {class: "muted"}, (o.digest || "").slice(0, 16))));
  show(
    el("h1", {}, "Job ", j.job_id, " ", state(j.state, j.reused_from)),
    reuseBanner(j),
    el("h2", {}, "Timeline"), timeline(j),
    el("table", {class: "kv"},
      kv("Project / app", `${j.spec.project} / ${j.spec.app.name}${j.spec.app.version ? "@" + j.spec.app.version : ""}`),
      kv("Command", (j.spec.app.command || []).join(" ")),
      kv("Worker", `${j.worker_id || "-"} (attempt ${j.attempt})`),
      kv("Exit code", j.exit_code === undefined ? "-" : j.exit_code),
      kv("Run time", duration(j.run_time_ms)),
      kv("Message", j.message || "-"),
      kv("Job hash", j.job_hash),
      j.image_id ? kv("Image", j.image_id) : null),
    el("h2", {}, "Why it was or was not reused"),
    x ? el("div", {id: "explain"}, el("p", {}, x.verdict, ": ", x.summary),
      (x.differences || []).length ? el("table", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "This job"), el("th", {}, "Nearest entry")),
        x.differences.map((d) => el("tr", {}, el("td", {}, d.field), el("td", {}, d.job_value), el("td", {}, d.entry_value)))) : null)
      : el("p", {class: "muted"}, "No explanation."),
    el("h2", {}, "Files (declared outputs)"),
    outputs.length ? el("table", {id: "outputs"}, el("tr", {}, el("th", {}, "Path"), el("th", {}, "Size"), el("th", {}, "Digest")), outputs) : el("p", {class: "muted"}, "No declared output."),
    el("h2", {}, `Workspace (${n(data.files_total)} files${n(data.files_total) > files.length ? ", the first " + files.length + " shown: deja status --files " + j.job_id + " lists them all" : ""})`),
    files.length ? el("table", {id: "files"}, el("tr", {}, el("th", {}, "Path"), el("th", {}, "Size"), el("th", {}, "Mode"), el("th", {}, "Digest")), files) : el("p", {class: "muted"}, "No workspace files (it has not finished, or left none)."),
    el("h2", {}, "Logs (last 8 KiB)"),
    data.logs_error ? el("p", {class: "muted"}, data.logs_error) : el("div", {id: "logs"},
      el("div", {class: "muted"}, "stdout"), el("pre", {id: "stdout"}, data.stdout_tail || "(empty)"),
      el("div", {class: "muted"}, "stderr"), el("pre", {id: "stderr"}, data.stderr_tail || "(empty)")));
}

async function pipelinesPage() {
  const data = await api("/api/pipelines");
  show(el("h1", {}, "Pipelines"),
    el("table", {id: "pipelines"}, el("tr", {}, ...["Pipeline", "Name", "Project", "State", "Nodes", "Created"].map((h) => el("th", {}, h))),
      data.pipelines.map((p) => el("tr", {}, el("td", {}, el("a", {href: "#pipeline?id=" + p.pipeline_id}, p.pipeline_id)),
        el("td", {}, p.spec.name), el("td", {}, p.spec.project), el("td", {}, state(p.state)),
        el("td", {}, `${p.nodes.filter((x) => x.state === "NODE_SUCCEEDED").length}/${p.nodes.length} done, ${p.nodes.filter((x) => x.reused_from).length} reused`),
        el("td", {}, when(p.created_at_ms))))));
}

function dag(p) {
  const ups = {}, depth = {};
  for (const node of p.spec.nodes) ups[node.name] = [];
  for (const e of p.spec.edges || []) if (ups[e.to_node] && !ups[e.to_node].includes(e.from_node)) ups[e.to_node].push(e.from_node);
  const d = (name, seen = new Set()) => depth[name] !== undefined ? depth[name] : seen.has(name) ? 0 :
    (seen.add(name), depth[name] = Math.max(0, ...ups[name].map((u) => d(u, seen) + 1)));
  p.spec.nodes.forEach((node) => d(node.name));
  const rowOf = {}, rows = {};
  for (const node of p.spec.nodes) { const k = depth[node.name]; rows[k] = (rows[k] || 0); rowOf[node.name] = rows[k]++; }
  const W = 200, H = 64, gx = 70, gy = 24, pos = (name) => ({x: 20 + depth[name] * (W + gx), y: 20 + rowOf[name] * (H + gy)});
  const width = 40 + (Math.max(...Object.values(depth)) + 1) * (W + gx), height = 40 + Math.max(...Object.values(rows)) * (H + gy);
  const g = svg("svg", {width, height, id: "dag"});
  g.append(svg("defs", {}, svg("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto"}, svg("path", {d: "M0,0 L10,5 L0,10 z", fill: "#8a94a6"}))));
  for (const [to, froms] of Object.entries(ups)) for (const from of froms) {
    const a = pos(from), b = pos(to);
    g.append(svg("path", {d: `M${a.x + W},${a.y + H / 2} C${a.x + W + gx / 2},${a.y + H / 2} ${b.x - gx / 2},${b.y + H / 2} ${b.x},${b.y + H / 2}`, stroke: "#8a94a6", fill: "none", "marker-end": "url(#arrow)"}));
  }
  const colors = {NODE_SUCCEEDED: "#2e8b57", NODE_FAILED: "#c0392b", NODE_UPSTREAM_FAILED: "#c0392b", NODE_RUNNING: "#2a62c9", NODE_CANCELLED: "#7f8c8d"};
  for (const s of p.nodes) {
    const {x, y} = pos(s.name), reused = !!s.reused_from;
    const box = svg("g", {class: "dag-node", "data-node": s.name, "data-state": s.state});
    box.append(svg("rect", {x, y, width: W, height: H, rx: 8, fill: reused ? "#6c3fc5" : colors[s.state] || "#c58b00"}));
    box.append(svg("text", {x: x + 10, y: y + 20, fill: "#fff", "font-weight": "bold"}, s.name));
    box.append(svg("text", {x: x + 10, y: y + 38, fill: "#fff"}, s.state.replace("NODE_", "") + (s.job_id ? " · " + s.job_id : "")));
    box.append(svg("text", {x: x + 10, y: y + 54, fill: "#fff"}, reused ? `reused from ${s.reused_from}, saved ${duration(s.time_saved_ms)}` : n(s.run_time_ms) ? "ran " + duration(s.run_time_ms) : ""));
    const link = svg("a", {href: s.job_id ? "#job?id=" + s.job_id : "#pipeline?id=" + p.pipeline_id}); link.append(box); g.append(link);
  }
  return g;
}

async function pipelinePage() {
  const p = (await api("/api/pipeline?id=" + encodeURIComponent(params().get("id")))).pipeline;
  const saved = p.nodes.reduce((t, s) => t + n(s.time_saved_ms), 0);
  show(el("h1", {}, `Pipeline ${p.pipeline_id} (${p.spec.name}) `, state(p.state)),
    el("p", {}, `run ${p.run}, project ${p.spec.project}, created ${when(p.created_at_ms)}; ${p.nodes.filter((s) => s.reused_from).length} of ${p.nodes.length} nodes reused, saving ${duration(saved)}`),
    p.message ? el("div", {class: "error"}, p.message) : null, dag(p));
}

async function statsPage() {
  const data = await api("/api/stats?days=14"), t = data.stats.total;
  const cards = el("div", {class: "cards"},
    el("div", {class: "card"}, "Jobs", el("b", {}, t.jobs)), el("div", {class: "card"}, "Reused", el("b", {}, t.reused)),
    el("div", {class: "card"}, "Reuse rate", el("b", {}, Math.round(100 * (t.reuse_rate || 0)) + "%")),
    el("div", {class: "card", id: "time-saved"}, "Time saved", el("b", {}, duration(t.time_saved_ms))));
  const days = data.saved_per_day, max = Math.max(1, ...days.map((d) => n(d.saved_ms))), bw = 52;
  const chart = svg("svg", {width: days.length * bw + 20, height: 200, id: "saved-chart"});
  days.forEach((d, i) => {
    const h = Math.round(140 * n(d.saved_ms) / max);
    chart.append(svg("rect", {x: 10 + i * bw, y: 160 - h, width: bw - 10, height: Math.max(h, 1), fill: "#6c3fc5"}));
    chart.append(svg("text", {x: 10 + i * bw, y: 176}, d.day.slice(5)));
    if (n(d.saved_ms)) chart.append(svg("text", {x: 10 + i * bw, y: 154 - h}, duration(d.saved_ms)));
  });
  show(el("h1", {}, "Stats"), cards, el("h2", {}, "Time saved per day (UTC), last 14 days"), chart,
    el("h2", {}, "Per app"), el("table", {id: "apps"}, el("tr", {}, ...["App", "Jobs", "Succeeded", "Failed", "Reused", "Reuse rate", "Run time", "Time saved"].map((h) => el("th", {}, h))),
      data.stats.apps.map((a) => el("tr", {}, el("td", {}, a.app_name), el("td", {}, a.jobs), el("td", {}, a.succeeded), el("td", {}, a.failed),
        el("td", {}, a.reused), el("td", {}, Math.round(100 * (a.reuse_rate || 0)) + "%"), el("td", {}, duration(a.run_time_ms)), el("td", {}, duration(a.time_saved_ms))))));
}

async function workersPage() {
  const data = await api("/api/workers");
  const res = (r) => r ? `${n(r.milli_cpus) / 1000} CPUs, ${bytes(r.memory_bytes)}, ${n(r.gpus)} GPUs` : "-";
  show(el("h1", {}, "Workers"),
    el("table", {id: "workers"}, el("tr", {}, ...["Worker", "Connected", "Slots", "Disk free", "Resources", "In use", "Limits", "Engine"].map((h) => el("th", {}, h))),
      data.workers.map((w) => el("tr", {}, el("td", {}, w.worker_id), el("td", {}, w.connected ? "yes" : "no"),
        el("td", {}, `${w.busy_slots} of ${w.slots} busy`), el("td", {}, w.disk.refusing || bytes(w.disk.free_bytes)),
        el("td", {}, res(w.capacity && w.capacity.total)), el("td", {}, res(w.used)),
        el("td", {}, (w.capacity && w.capacity.limits) || "-"), el("td", {}, (w.capacity && (w.capacity.engine || w.capacity.no_engine)) || "-")))));
}

function signIn(why) {
  const input = el("input", {type: "password", placeholder: "t1.…", size: 40, id: "token"});
  show(el("h1", {}, "Sign in"), el("p", {}, "The dashboard takes the same tokens as the deja CLI (deja token create --role reader)."),
    why ? el("p", {class: "error"}, why) : null,
    el("form", {onsubmit: (e) => { e.preventDefault(); sessionStorage.setItem("deja_token", input.value.trim()); route(); }}, input, " ", el("button", {type: "submit"}, "Sign in")));
}

const pages = {jobs: jobsPage, job: jobPage, pipelines: pipelinesPage, pipeline: pipelinePage, stats: statsPage, workers: workersPage};
async function route() {
  takeTokenFromAddress();
  const name = (location.hash.slice(1).split("?")[0]) || "jobs";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("on", a.getAttribute("href") === "#" + name || (a.getAttribute("href") === "#jobs" && name === "job") || (a.getAttribute("href") === "#pipelines" && name === "pipeline"));
  try { await (pages[name] || jobsPage)(); document.body.dataset.ready = name; }
  catch (e) { if (e instanceof SignIn) signIn(e.message); else show(el("div", {class: "error"}, e.message)); document.body.dataset.ready = "error"; }
}
window.addEventListener("hashchange", route);
route();
</script></body></html>
)DEJA";

}  // namespace deja
