// The homeowner's page: live state over server-sent events, controls over the REST API.
// Every URL is relative, so the page works under Home Assistant's ingress path prefix.
"use strict";

const TOKEN_KEY = "ocpp-proxy-api-token";
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#1f7a4d", "#2f6fd6", "#d9822b", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d"];

const state = { stream: null, last: null, runningKey: "", energyAt: 0, owners: [] };

// -- the API token (direct port only; ingress needs none) -------------------------------------

function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}

function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

function withToken(path) {
  const t = token();
  if (!t) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(t);
}

class ApiError extends Error {
  constructor(status, body) {
    super(describeError(status, body));
    this.status = status;
    this.body = body;
  }
}

function describeError(status, body) {
  const text = (body && body.error) || "HTTP " + status;
  if (body && body.rule) return text + " (rule: " + body.rule + ")";
  if (body && body.reason === "charger_offline") return "Charger offline: " + text;
  if (body && body.field && status === 400) return text + " (" + body.field + ")";
  if (status === 504) return "The charger did not answer: " + text;
  return text;
}

async function api(path, options = {}) {
  const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
  if (token()) headers.Authorization = "Bearer " + token();
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, { method: options.method || "GET", headers, body: options.body });
  if (response.status === 401) {
    showTokenForm();
  }
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, typeof body === "object" ? body : null);
  return body;
}

function showTokenForm() {
  document.getElementById("token-form").hidden = false;
}

// -- feedback --------------------------------------------------------------------------------

let feedbackTimer = 0;

function feedback(message, isError) {
  const box = document.getElementById("feedback");
  box.textContent = message;
  box.className = "feedback" + (isError ? " error" : "");
  box.hidden = false;
  clearTimeout(feedbackTimer);
  feedbackTimer = setTimeout(() => { box.hidden = true; }, isError ? 12000 : 5000);
}

async function run(what, action) {
  try {
    const result = await action();
    if (result && result.action) {
      const ok = result.accepted;
      feedback(what + ": the charger answered " + (result.status || (ok ? "Accepted" : "an error")), !ok);
    } else {
      feedback(what + ": done", false);
    }
    return result;
  } catch (error) {
    feedback(what + " refused: " + error.message, true);
    throw error;
  }
}

// -- small DOM helpers -----------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function fmt(value, digits, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toFixed(digits) + (unit ? " " + unit : "");
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? h + " h " + String(m).padStart(2, "0") + " min" : m + " min " + (s % 60) + " s";
}

function localTime(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "short" }) : "–";
}

function colorOf(owner) {
  const name = owner || "home";
  let index = state.owners.indexOf(name);
  if (index < 0) { state.owners.push(name); index = state.owners.length - 1; }
  return COLORS[index % COLORS.length];
}

// -- live state ------------------------------------------------------------------------------

function render(update) {
  state.last = update;
  const rules = update.rules;
  const override = document.getElementById("override-switch");
  if (!override.matches(":disabled")) override.checked = rules.override.enabled;
  const shared = document.getElementById("shared-switch");
  if (!shared.matches(":disabled")) shared.checked = rules.allow_shared_charging;
  const max = document.getElementById("max-current");
  if (document.activeElement !== max) max.value = rules.max_current_a ?? "";
  const notes = [];
  if (rules.override.fail_closed) notes.push("Home Assistant cannot be read: backends may only read.");
  if (rules.override.home_assistant) notes.push("The Home Assistant override is on.");
  if (rules.presence.someone_home) notes.push("Someone is home: backends may not start sessions.");
  document.getElementById("rules-note").textContent = notes.join(" ");
  renderChargers(update);
  renderPower(update.live[0]);
  const key = update.live.map((s) => s.charge_point_id + "/" + s.transaction_id).join(",");
  if (key !== state.runningKey || Date.now() - state.energyAt > 60000) {
    state.runningKey = key;
    refreshHistory();
  }
}

function liveOf(update, chargerId, connectorId) {
  return update.live.find((s) => s.charge_point_id === chargerId && s.connector === connectorId);
}

function renderChargers(update) {
  const root = document.getElementById("chargers");
  const cards = [];
  if (!update.chargers.length) {
    cards.push(el("div", { class: "card" }, el("h2", { text: "No charger yet" }),
      el("p", { class: "note", text: "Point the charger at ws://<this host>:<port>/charger." })));
  }
  for (const charger of update.chargers) {
    const card = el("article", { class: "card", "data-testid": "charger-" + charger.id });
    card.append(el("div", { class: "row" },
      el("h2", { text: charger.id }),
      el("span", { class: "badge" + (charger.connected ? "" : " off"), text: charger.connected ? "online" : "offline" }),
      el("span", { class: "note", text: "OCPP " + charger.ocpp_version + (charger.primary ? " · primary: " + charger.primary : "") })));
    const list = el("div", { class: "connectors" });
    const connectors = charger.connectors.filter((c) => (c.evse_id ?? c.connector_id) !== 0);
    if (!connectors.length) connectors.push({ connector_id: 1, evse_id: null, status: "unknown" });
    for (const connector of connectors) list.append(renderConnector(charger, connector, update));
    card.append(list);
    if (charger.alerts && charger.alerts.length) {
      card.append(el("p", { class: "note", text: "Alerts: " + charger.alerts.map((a) => a.message || JSON.stringify(a)).join("; ") }));
    }
    card.append(el("h3", { text: "Backends" }));
    const table = el("table", {}, el("thead", {}, el("tr", {},
      el("th", { text: "Backend" }), el("th", { text: "Link" }), el("th", { text: "Queue" }), el("th", { text: "Last error" }))));
    const body = el("tbody");
    for (const backend of charger.backends) {
      body.append(el("tr", { "data-testid": "backend-" + charger.id + "-" + backend.id },
        el("td", { text: backend.id + " (" + backend.direction +
          (backend.translated ? ", OCPP " + backend.version + ", translated" : "") + ")" }),
        el("td", { text: backend.state }),
        el("td", { text: String(backend.queue_depth ?? 0) }),
        el("td", { text: backend.last_error || "" })));
    }
    if (!charger.backends.length) body.append(el("tr", {}, el("td", { colspan: "4", text: "none: the proxy answers the charger itself" })));
    table.append(body);
    card.append(el("div", { class: "table-wrap" }, table));
    cards.push(card);
  }
  root.replaceChildren(...cards);
}

function renderConnector(charger, connector, update) {
  const where = connector.evse_id ?? connector.connector_id;
  const live = liveOf(update, charger.id, where);
  const id = charger.id + "-" + where;
  const box = el("div", { class: "connector", "data-testid": "connector-" + id });
  box.append(el("div", {}, el("span", { text: "Connector " + where + ": " }),
    el("span", { class: "state", "data-testid": "state-" + id, text: connector.status || "unknown" })));
  const metric = (label, value, testid) => el("div", { class: "metric" },
    el("b", { "data-testid": testid, text: value }), el("span", { text: label }));
  box.append(el("div", { class: "metrics" },
    metric("power now", live ? fmt(live.power_w === null ? null : live.power_w / 1000, 2, "kW") : "–", "power-" + id),
    metric("session energy", live ? fmt(live.energy_kwh, 3, "kWh") : "–", "energy-" + id),
    metric("duration", live ? duration(live.duration_s) : "–", "duration-" + id),
    metric("owner", live ? (live.owner || "home") : "–", "owner-" + id)));
  const cmd = el("div", { class: "cmd" });
  const base = "api/v1/chargers/" + encodeURIComponent(charger.id) + "/commands/";
  if (live) {
    cmd.append(el("button", { type: "button", class: "secondary", onclick: () =>
      run("Stop", () => api(base + "stop", { method: "POST", json: { transaction_id: live.transaction_id } })).catch(() => {}),
      text: "Stop" }));
  } else {
    const tag = el("input", { type: "text", placeholder: "id tag", "aria-label": "id tag", value: "HOME" });
    cmd.append(tag, el("button", { type: "button", onclick: () =>
      run("Start", () => api(base + "start", { method: "POST", json: { connector_id: where, id_tag: tag.value } })).catch(() => {}),
      text: "Start" }));
  }
  cmd.append(el("button", { type: "button", class: "secondary", onclick: () =>
    run("Unlock", () => api(base + "unlock", { method: "POST", json: { connector_id: where } })).catch(() => {}),
    text: "Unlock" }));
  box.append(cmd);
  return box;
}

// -- charts ----------------------------------------------------------------------------------

function renderPower(live) {
  const root = document.getElementById("power-chart");
  const points = live ? live.power_series.map(([at, w]) => [Date.parse(at), w / 1000]) : [];
  if (!points.length) {
    root.replaceChildren(el("p", { class: "note", text: live ? "Waiting for meter values…" : "No session running." }));
    return;
  }
  const W = 600, H = 220, L = 60, R = 10, T = 12, B = 26;
  const t0 = Date.parse(live.started_at) || points[0][0];
  const t1 = Math.max(points[points.length - 1][0], t0 + 1000);
  const top = Math.max(1, ...points.map((p) => p[1])) * 1.15;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => H - B - (v / top) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "power over the session" });
  for (const frac of [0, 0.5, 1]) {
    chart.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: y(top * frac), y2: y(top * frac) }));
    const label = svg("text", { x: L - 6, y: y(top * frac) + 4, "text-anchor": "end" });
    label.textContent = (top * frac).toFixed(1) + (frac === 1 ? " kW" : "");
    chart.append(label);
  }
  for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
    const label = svg("text", { x: x(t), y: H - 6, "text-anchor": anchor });
    label.textContent = new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    chart.append(label);
  }
  // A step line: the power holds until the next sample.
  let path = `M ${x(points[0][0])} ${y(points[0][1])}`;
  for (let i = 1; i < points.length; i++) path += ` H ${x(points[i][0])} V ${y(points[i][1])}`;
  path += ` H ${x(t1)}`;
  chart.append(svg("path", { d: path + ` V ${y(0)} H ${x(points[0][0])} Z`, fill: COLORS[0], "fill-opacity": "0.15", stroke: "none" }));
  chart.append(svg("path", { d: path, fill: "none", stroke: COLORS[0], "stroke-width": "2", "data-testid": "power-line" }));
  root.replaceChildren(chart);
}

function isoDate(date) {
  return date.getFullYear() + "-" + String(date.getMonth() + 1).padStart(2, "0") + "-" + String(date.getDate()).padStart(2, "0");
}

function lastDays(n) {
  const days = [];
  const today = new Date();
  for (let i = n - 1; i >= 0; i--) days.push(isoDate(new Date(today.getFullYear(), today.getMonth(), today.getDate() - i)));
  return days;
}

function renderEnergy(totals) {
  const days = lastDays(30);
  const byDay = new Map(days.map((d) => [d, new Map()]));
  const owners = [];
  for (const row of totals) {
    const owner = row.owner || "home";
    if (!owners.includes(owner)) owners.push(owner);
    const day = byDay.get(row.period);
    if (day) day.set(owner, (day.get(owner) || 0) + row.energy_kwh);
  }
  const W = 600, H = 220, L = 60, R = 10, T = 12, B = 26;
  const top = Math.max(1, ...[...byDay.values()].map((m) => [...m.values()].reduce((a, b) => a + b, 0))) * 1.1;
  const slot = (W - L - R) / days.length;
  const y = (v) => H - B - (v / top) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "energy per day by backend" });
  for (const frac of [0, 0.5, 1]) {
    chart.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: y(top * frac), y2: y(top * frac) }));
    const label = svg("text", { x: L - 6, y: y(top * frac) + 4, "text-anchor": "end" });
    label.textContent = (top * frac).toFixed(1) + (frac === 1 ? " kWh" : "");
    chart.append(label);
  }
  days.forEach((day, i) => {
    let base = 0;
    for (const owner of owners) {
      const kwh = byDay.get(day).get(owner) || 0;
      if (kwh <= 0) continue;
      const rect = svg("rect", { x: L + i * slot + 1, width: Math.max(1, slot - 2), y: y(base + kwh), height: y(base) - y(base + kwh), fill: colorOf(owner), "data-owner": owner });
      const title = svg("title");
      title.textContent = `${day} · ${owner}: ${kwh.toFixed(2)} kWh`;
      rect.append(title);
      chart.append(rect);
      base += kwh;
    }
    if ((days.length - 1 - i) % 7 === 0) {
      const label = svg("text", { x: L + i * slot + slot / 2, y: H - 6, "text-anchor": "middle" });
      label.textContent = day.slice(5);
      chart.append(label);
    }
  });
  document.getElementById("energy-chart").replaceChildren(chart);
  const legend = document.getElementById("energy-legend");
  legend.replaceChildren(...(owners.length ? owners.map((o) => el("span", {}, el("i", { style: "background:" + colorOf(o) }), o))
    : [el("span", { class: "note", text: "No finished session in the last 30 days." })]));
}

// -- history: energy per day and the sessions table -----------------------------------------

async function refreshHistory() {
  state.energyAt = Date.now();
  const from = lastDays(30)[0];
  try {
    const [energy, sessions] = await Promise.all([
      api("api/v1/insights/energy?period=day&from=" + from),
      api("api/v1/sessions?limit=50"),
    ]);
    renderEnergy(energy.totals);
    renderSessions(sessions.sessions);
  } catch (error) {
    if (error.status !== 401) feedback("Could not load the history: " + error.message, true);
  }
}

function renderSessions(sessions) {
  const body = document.querySelector("#sessions-table tbody");
  const rows = sessions.map((s) => el("tr", {},
    el("td", { text: localTime(s.started_at) }),
    el("td", { text: s.charge_point_id + " #" + (s.evse_id ?? s.connector_id ?? "?") }),
    el("td", { text: s.owner || "home" }),
    el("td", { text: s.stopped_at ? duration(s.duration_s) : "running" }),
    el("td", { text: fmt(s.energy_kwh, 3) }),
    el("td", { text: s.revenue === null ? "–" : fmt(s.revenue, 2, s.currency || "") }),
    el("td", { text: s.home_cost === null ? "–" : fmt(s.home_cost, 2, s.home_currency || "") })));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "7", text: "No session yet." })));
  body.replaceChildren(...rows);
}

async function download(path, filename) {
  try {
    const headers = token() ? { Authorization: "Bearer " + token() } : {};
    const response = await fetch(path, { headers });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (error) {
    feedback("Download failed: " + error.message, true);
  }
}

// -- controls --------------------------------------------------------------------------------

function bindSwitch(id, path, label) {
  const input = document.getElementById(id);
  input.addEventListener("change", async () => {
    const wanted = input.checked;
    input.disabled = true;
    try {
      await run(label + (wanted ? " on" : " off"), () => api(path, { method: "POST", json: { enabled: wanted } }));
    } catch {
      input.checked = !wanted;
    } finally {
      input.disabled = false;
    }
  });
}

async function setMaxCurrent(value) {
  try {
    await run(value === null ? "Current limit lifted" : "Current limit " + value + " A",
      () => api("api/v1/max_current", { method: "POST", json: { max_current_a: value } }));
  } catch { /* shown */ }
}

// -- live stream -----------------------------------------------------------------------------

function setLink(online) {
  const badge = document.getElementById("link");
  badge.textContent = online ? "live" : "reconnecting…";
  badge.className = "badge" + (online ? "" : " off");
}

function connect() {
  if (state.stream) state.stream.close();
  const stream = new EventSource(withToken("api/v1/events"));
  state.stream = stream;
  stream.addEventListener("update", (event) => {
    setLink(true);
    render(JSON.parse(event.data));
  });
  stream.addEventListener("error", () => setLink(false));
}

async function start() {
  takeTokenFromUrl();
  bindSwitch("override-switch", "api/v1/override", "Override");
  bindSwitch("shared-switch", "api/v1/shared_charging", "Shared charging");
  document.getElementById("max-current-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = document.getElementById("max-current").value;
    setMaxCurrent(text === "" ? null : Number(text));
  });
  document.getElementById("max-current-lift").addEventListener("click", () => setMaxCurrent(null));
  document.getElementById("download-csv").addEventListener("click", () => download("api/v1/sessions?format=csv&limit=10000", "sessions.csv"));
  document.getElementById("download-json").addEventListener("click", () => download("api/v1/sessions?format=json&limit=10000", "sessions.json"));
  document.getElementById("download-energy").addEventListener("click", () => download("api/v1/insights/energy?period=day&format=csv", "energy-per-day.csv"));
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, document.getElementById("token-input").value.trim());
    document.getElementById("token-form").hidden = true;
    begin();
  });
  begin();
}

async function begin() {
  try {
    const [status, live] = await Promise.all([api("api/v1/status"), api("api/v1/live")]);
    render({ ...status, live: live.sessions });
  } catch (error) {
    if (error.status === 401) { setLink(false); return; }
    feedback("Could not reach the proxy: " + error.message, true);
  }
  connect();
}

document.addEventListener("DOMContentLoaded", start);
