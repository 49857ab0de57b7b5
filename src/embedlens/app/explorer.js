"use strict";
const $ = (id) => document.getElementById(id);
let METHODS = [], DEFAULTS = {}, PARAMETERS = "", MAP = null, VIEW = null, SELECTED = new Set();
// report.html carries its data inline (window.EMBEDLENS_STATIC) and answers the same
// questions without a server; the page served by `embedlens serve` asks the API
const STATIC = window.EMBEDLENS_STATIC || null;

async function api(path, options) {
  if (STATIC) return staticApi(path);
  const res = await fetch(path, options);
  const body = await res.json();
  if (!res.ok) {
    const message = body.error || JSON.stringify(body.detail || body);
    throw new Error(message);
  }
  return body;
}
// ---- the report's answers, from its inline data (see embedlens.app.report) -------------
function normalizeTitle(title) {  // as embedlens.core.embeddings.normalize_title
  let t = String(title).trim().toLowerCase().replace(/\s*\(\d{4}[^()]*\)\s*$/, "");
  const m = /^(.*), (\w+)$/.exec(t);
  if (m && STATIC.articles.includes(m[2])) t = m[2] + " " + m[1];
  return t.replace(/\s+/g, " ");
}
function staticApi(path) {
  const [pathname, query] = path.split("?"), p = new URLSearchParams(query || "");
  const url = { pathname: pathname }, M = STATIC.movies;
  const movie = (i) => ({ id: M.id[i], title: M.title[i] });
  if (url.pathname === "/api/methods") {
    return { methods: STATIC.methods, defaults: STATIC.defaults, ready: true };
  }
  if (url.pathname === "/api/search") {
    const form = normalizeTitle(p.get("q") || ""), limit = Number(p.get("limit") || 10);
    if (!form) throw new Error("q is empty: type part of a movie title.");
    const hits = [];
    M.form.forEach((f, i) => { if (f.includes(form)) hits.push(i); });
    hits.sort((a, b) => (M.form[a].startsWith(form) ? 0 : 1) - (M.form[b].startsWith(form) ? 0 : 1)
                        || M.popularity[b] - M.popularity[a]);
    return { movies: hits.slice(0, limit).map(movie) };
  }
  if (url.pathname === "/api/similar") {
    const method = p.get("method") || STATIC.defaults.similar, k = Number(p.get("k") || 10);
    const table = STATIC.neighbours[method];
    if (!table) throw new Error(method + " has no movie vectors in this report.");
    const item = String(p.get("item") || "").trim(), form = normalizeTitle(item);
    let at = M.id.findIndex((id) => String(id) === item);
    if (at < 0) at = M.form.findIndex((f) => f === form);
    if (at < 0) throw new Error("No movie " + JSON.stringify(item) + " in this report.");
    const row = table.query.indexOf(at);
    if (row < 0) {
      throw new Error(M.title[at] + " is not among the " + table.query.length.toLocaleString() +
                      " movies whose neighbours this report carries (embedlens serve has all).");
    }
    return { method: method, item: movie(at), neighbours: table.top[row].slice(0, k).map(
      (i, j) => Object.assign(movie(i), { score: table.score[row][j] })) };
  }
  if (url.pathname === "/api/map") {
    const method = p.get("method") || STATIC.defaults.similar, map = STATIC.maps[method];
    if (!map) throw new Error(method + " has no map in this report.");
    return { method: method, layout: map.layout, x: map.x, y: map.y,
             id: map.movie.map((i) => M.id[i]), title: map.movie.map((i) => M.title[i]),
             genre: map.movie.map((i) => M.genre[i]),
             popularity: map.movie.map((i) => M.popularity[i]), of: map.of };
  }
  throw new Error("The report cannot answer this; embedlens serve can.");
}

function fail(err) { $("error").textContent = String(err.message || err); }
function clear() { $("error").textContent = ""; }
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function table(head, rows) {
  const t = el("table"), tr = el("tr");
  head.forEach((h) => tr.appendChild(el("th", h)));
  t.appendChild(tr);
  rows.forEach((r) => t.appendChild(r));
  return t;
}
function row(cells, cls) {
  const tr = el("tr", null, cls);
  cells.forEach((c) => tr.appendChild(el("td", c)));
  return tr;
}

function on(id, event, handler) {  // the report has no user or cold-start section
  const e = $(id);
  if (e) e.addEventListener(event, handler);
}

async function init() {
  const info = await api("/api/methods");
  METHODS = info.methods; DEFAULTS = info.defaults; PARAMETERS = info.parameters || "";
  if ($("run")) {
    $("run").textContent = METHODS.length + " methods; similar uses " + DEFAULTS.similar +
      ", recommend " + DEFAULTS.recommend + ", cold start " + (DEFAULTS.coldstart || "none");
  }
  METHODS.filter((m) => m.items).forEach((m) => {
    const o = el("option", m.method); o.value = m.method; $("map-method").appendChild(o);
  });
  if (DEFAULTS.similar) $("map-method").value = DEFAULTS.similar;
  if ($("board")) board();
  document.querySelectorAll("table.sortable").forEach(sortable);
  if (METHODS.some((m) => m.items)) await loadMap();
}

// a click on a column head sorts the table by it (again: the other way); cells carry
// their number in data-v, so "0.3812 ± 0.0131" sorts by 0.3812
function sortable(t) {
  const heads = t.querySelectorAll("th");
  heads.forEach((th, col) => {
    th.style.cursor = "pointer";
    th.title = "sort by " + th.textContent;
    th.addEventListener("click", () => {
      const rows = Array.from(t.querySelectorAll("tr")).slice(1);
      const down = th.dataset.dir !== "down";
      heads.forEach((h) => { delete h.dataset.dir; });
      th.dataset.dir = down ? "down" : "up";
      const key = (r) => {
        const c = r.children[col];
        if (!c) return "";
        return c.dataset.v !== undefined ? Number(c.dataset.v) : c.textContent;
      };
      rows.sort((a, b) => {
        const x = key(a), y = key(b);
        const cmp = typeof x === "number" && typeof y === "number" ? x - y
          : String(x).localeCompare(String(y));
        return down ? -cmp : cmp;
      });
      rows.forEach((r) => t.appendChild(r));
    });
  });
}

function board() {
  const rows = METHODS.map((m) => {
    const r = m.leaderboard || {};
    const k = Object.keys(r).find((key) => /^ndcg@\d+$/.test(key));
    const ci = k ? r[k + "_ci95"] : undefined;
    const tuned = r.tuning ? (r.tuning.trials + " trials" +
                              (r.tuning.budget ? " (budget: " + r.tuning.budget + ")" : ""))
      : (PARAMETERS.startsWith("Parameters: the tuned preset") ? "preset" : "as run");
    return row([m.rank, m.method, r.role || "",
      k ? r[k].toFixed(4) + " ± " + (ci === undefined ? "?" : ci.toFixed(4)) : "",
      r.fit_seconds === undefined ? "" : r.fit_seconds.toFixed(1), tuned]);
  });
  $("board").replaceChildren(table(["#", "method", "role", "NDCG (± 95% CI)", "fit s",
                                     "parameters"], rows), el("p", PARAMETERS, "muted"));
}

let pending = null;
on("q", "input", () => {
  clearTimeout(pending);
  const q = $("q").value.trim();
  if (q.length < 2) return;
  pending = setTimeout(async () => {
    try {
      const found = await api("/api/search?q=" + encodeURIComponent(q) + "&limit=10");
      $("suggest").replaceChildren(...found.movies.map((m) => {
        const o = el("option"); o.value = m.title || String(m.id); return o;
      }));
    } catch (e) { /* a partial title that matches nothing is not an error yet */ }
  }, 200);
});
on("q", "keydown", (e) => { if (e.key === "Enter") neighbours($("q").value).catch(fail); });
on("go", "click", () => neighbours($("q").value).catch(fail));

async function neighbours(item) {
  clear();
  item = String(item).trim();
  if (!item) return;
  const methods = METHODS.filter((m) => m.items).map((m) => m.method);
  const results = await Promise.all(methods.map((m) =>
    api("/api/similar?k=10&method=" + encodeURIComponent(m) + "&item=" +
        encodeURIComponent(item)).catch((e) => ({ method: m, error: e.message }))));
  const count = {};
  results.forEach((r) => (r.neighbours || []).forEach((n) => {
    count[n.id] = (count[n.id] || 0) + 1;
  }));
  SELECTED = new Set();
  const cols = results.map((r) => {
    const div = el("div", null, "col");
    div.appendChild(el("strong", r.method));
    if (r.error) { div.appendChild(el("div", r.error, "error")); return div; }
    if (r.item) SELECTED.add(r.item.id);
    div.appendChild(table(["title", "cos", "shared"], r.neighbours.map((n) =>
      row([n.title || n.id, n.score.toFixed(3), count[n.id] > 1 ? count[n.id] : ""],
          count[n.id] > 1 ? "shared" : ""))));
    return div;
  });
  $("neighbours").replaceChildren(...cols);
  const first = results.find((r) => r.item);
  if (first) first.neighbours.forEach((n) => SELECTED.add(n.id));
  draw();
}

// ---- map ---------------------------------------------------------------------------
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"];
$("map-method").addEventListener("change", () => loadMap().catch(fail));
$("colour").addEventListener("change", draw);

async function loadMap() {
  MAP = await api("/api/map?method=" + encodeURIComponent($("map-method").value));
  const xs = MAP.x, ys = MAP.y;
  const pad = 0.05;
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const w = (x1 - x0) || 1, h = (y1 - y0) || 1;
  VIEW = { x0: x0 - pad * w, x1: x1 + pad * w, y0: y0 - pad * h, y1: y1 + pad * h };
  MAP.year = MAP.title.map((t) => { const m = /\((\d{4})\)\s*$/.exec(t || ""); return m ? +m[1] : null; });
  if ($("map-note")) {
    $("map-note").textContent = (MAP.layout === "umap" ? "UMAP" : "PCA") + " of " +
      MAP.x.length.toLocaleString() + (MAP.of && MAP.of > MAP.x.length
        ? " (the most rated) of " + MAP.of.toLocaleString() : "") + " movies' unit vectors";
  }
  draw();
}
function toScreen(i) {
  const c = $("map");
  return [(MAP.x[i] - VIEW.x0) / (VIEW.x1 - VIEW.x0) * c.width,
          c.height - (MAP.y[i] - VIEW.y0) / (VIEW.y1 - VIEW.y0) * c.height];
}
function colours() {
  const by = $("colour").value, legend = [];
  if (by === "genre") {
    const counts = {};
    MAP.genre.forEach((g) => { counts[g] = (counts[g] || 0) + 1; });
    const top = Object.keys(counts).sort((a, b) => counts[b] - counts[a]).slice(0, PALETTE.length - 1);
    const index = Object.fromEntries(top.map((g, i) => [g, i]));
    top.forEach((g, i) => legend.push([g || "(none)", PALETTE[i]]));
    legend.push(["other genres, or none", "#cccccc"]);
    return [MAP.genre.map((g) => g in index ? PALETTE[index[g]] : "#cccccc"), legend];
  }
  const values = by === "year" ? MAP.year : MAP.popularity.map((p) => Math.log1p(p));
  const known = values.filter((v) => v !== null);
  const lo = Math.min(...known), hi = Math.max(...known);
  legend.push([(by === "year" ? lo : "rare"), "hsl(240,70%,50%)"]);
  legend.push([(by === "year" ? hi : "popular"), "hsl(0,70%,50%)"]);
  legend.push(["unknown", "#cccccc"]);
  return [values.map((v) => v === null ? "#cccccc" :
    "hsl(" + (240 - 240 * (v - lo) / ((hi - lo) || 1)) + ",70%,50%)"), legend];
}
function draw() {
  if (!MAP) return;
  const c = $("map"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  const [fill, legend] = colours();
  for (let i = 0; i < MAP.x.length; i++) {
    const [sx, sy] = toScreen(i);
    ctx.fillStyle = fill[i];
    ctx.fillRect(sx - 1.5, sy - 1.5, 3, 3);
  }
  ctx.strokeStyle = "#000";
  MAP.id.forEach((id, i) => {
    if (!SELECTED.has(id)) return;
    const [sx, sy] = toScreen(i);
    ctx.beginPath(); ctx.arc(sx, sy, 5, 0, 2 * Math.PI); ctx.stroke();
  });
  $("legend").replaceChildren(...legend.map(([name, colour]) => {
    const s = el("span"), i = el("i"); i.style.background = colour;
    s.appendChild(i); s.appendChild(document.createTextNode(String(name))); return s;
  }));
}
function nearest(ev) {
  const c = $("map"), r = c.getBoundingClientRect();
  const mx = (ev.clientX - r.left) * c.width / r.width, my = (ev.clientY - r.top) * c.height / r.height;
  let best = -1, bestD = 64;
  for (let i = 0; i < MAP.x.length; i++) {
    const [sx, sy] = toScreen(i), d = (sx - mx) ** 2 + (sy - my) ** 2;
    if (d < bestD) { best = i; bestD = d; }
  }
  return best;
}
let drag = null;
$("map").addEventListener("mousemove", (ev) => {
  if (!MAP) return;
  if (drag) {
    const c = $("map"), dx = (ev.clientX - drag.x) / c.width * (VIEW.x1 - VIEW.x0),
          dy = (ev.clientY - drag.y) / c.height * (VIEW.y1 - VIEW.y0);
    VIEW = { x0: VIEW.x0 - dx, x1: VIEW.x1 - dx, y0: VIEW.y0 + dy, y1: VIEW.y1 + dy };
    drag = { x: ev.clientX, y: ev.clientY, moved: true };
    draw();
    return;
  }
  const i = nearest(ev), tip = $("tip");
  if (i < 0) { tip.style.display = "none"; return; }
  tip.textContent = (MAP.title[i] || MAP.id[i]) + (MAP.genre[i] ? " — " + MAP.genre[i] : "");
  tip.style.left = (ev.pageX + 12) + "px"; tip.style.top = (ev.pageY + 12) + "px";
  tip.style.display = "block";
});
$("map").addEventListener("mouseleave", () => { $("tip").style.display = "none"; });
$("map").addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, moved: false }; });
$("map").addEventListener("mouseup", (ev) => {
  const moved = drag && drag.moved;
  drag = null;
  if (moved || !MAP) return;
  const i = nearest(ev);
  if (i >= 0) { $("q").value = MAP.title[i] || String(MAP.id[i]); neighbours(String(MAP.id[i])).catch(fail); }
});
$("map").addEventListener("wheel", (ev) => {
  if (!MAP) return;
  ev.preventDefault();
  const c = $("map"), r = c.getBoundingClientRect(), f = ev.deltaY < 0 ? 0.8 : 1.25;
  const fx = (ev.clientX - r.left) / r.width, fy = 1 - (ev.clientY - r.top) / r.height;
  const cx = VIEW.x0 + fx * (VIEW.x1 - VIEW.x0), cy = VIEW.y0 + fy * (VIEW.y1 - VIEW.y0);
  VIEW = { x0: cx - (cx - VIEW.x0) * f, x1: cx + (VIEW.x1 - cx) * f,
           y0: cy - (cy - VIEW.y0) * f, y1: cy + (VIEW.y1 - cy) * f };
  draw();
}, { passive: false });

// ---- user ----------------------------------------------------------------------------
on("user-go", "click", () => showUser().catch(fail));
on("user", "keydown", (e) => { if (e.key === "Enter") showUser().catch(fail); });
async function showUser() {
  clear();
  const user = $("user").value.trim();
  if (!user) return;
  const h = await api("/api/users/" + encodeURIComponent(user));
  const hist = el("div");
  hist.appendChild(el("strong", "Train history (" + h.history.length + " movies): "));
  hist.appendChild(el("span", h.history.slice(0, 30).map((m) => m.title || m.id).join("; ") +
                                (h.history.length > 30 ? "; …" : "")));
  $("history").replaceChildren(hist);
  const methods = METHODS.map((m) => m.method);
  const results = await Promise.all(methods.map((m) =>
    api("/api/recommend?k=10&method=" + encodeURIComponent(m) + "&user=" +
        encodeURIComponent(user)).catch((e) => ({ method: m, error: e.message }))));
  $("recs").replaceChildren(...results.map((r) => {
    const div = el("div", null, "col");
    div.appendChild(el("strong", r.method));
    if (r.error) { div.appendChild(el("div", r.error, "error")); return div; }
    const hits = r.recommendations.filter((x) => x.held_out).length;
    div.appendChild(el("div", r.recommendations.length && r.recommendations[0].held_out === null
      ? "test part not loaded" : hits + " hit(s)", "muted"));
    div.appendChild(table(["#", "title"], r.recommendations.map((x) =>
      row([x.rank, x.title || x.id], x.held_out ? "hit" : ""))));
    return div;
  }));
}

// ---- cold start ----------------------------------------------------------------------
on("cs-go", "click", () => coldStart().catch(fail));
async function coldStart() {
  clear();
  const split = (s, sep) => s.split(sep).map((x) => x.trim()).filter((x) => x);
  const year = $("cs-year").value.trim();
  const body = { genres: split($("cs-genres").value, "|"), tags: split($("cs-tags").value, ","),
                 year: year ? Number(year) : null, title: $("cs-title").value.trim() || null };
  const r = await api("/api/coldstart", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  SELECTED = new Set(r.neighbours.map((n) => n.id));
  draw();
  $("coldstart").replaceChildren(el("div", "placed by " + r.method + "; its neighbours (circled on the map):", "muted"),
    table(["title", "cos"], r.neighbours.map((n) => row([n.title || n.id, n.score.toFixed(3)]))));
}

init().catch(fail);
