// vigil's status page: takes the current state from /status at every (re)connect of
// /api/v1/events, then follows the stream and updates the page in place.
"use strict";
const BEATS = 60;
const STATUS = { O: "OK", W: "WARN", C: "CRIT", U: "UNKNOWN" };
const HEAL_WORDS = { succeeded: "healed", failed: "heal failed" };
const live = document.getElementById("live");

function card(name) { return document.getElementById("check-" + name); }

// Each check's last results, oldest first, as [time, status, duration_ms, summary]; a
// summary is null until the check's bar is looked at (then fetched) or came live.
let beats = {};
let fetched = {};
// Each check's anomalies as [start, end] (end Infinity while on): their beats are marked.
let unusual = {};

function load(doc) {
  const page = JSON.parse(doc.getElementById("vigil-data").textContent);
  beats = {};
  fetched = {};
  unusual = {};
  for (const [name, c] of Object.entries(page.checks)) {
    beats[name] = c.t.map((t, i) => [page.base + t / 10, STATUS[c.s[i]], c.d[i], null]);
    unusual[name] = (c.a || []).map(([a, b]) =>
      [page.base + a / 10, b === null ? Infinity : page.base + b / 10]);
  }
}

function describe(beat) {
  const [at, status, duration, summary] = beat;
  return new Date(at * 1000).toLocaleTimeString() + " · " + status + " · " +
    duration.toFixed(1) + " ms" + (summary ? " · " + summary : "");
}

async function summaries(name) {
  // Fetched once: the page itself stays small with hundreds of checks.
  if (fetched[name]) return;
  fetched[name] = true;
  try {
    const answer = await fetch("/status/" + encodeURIComponent(name) + ".json");
    const known = new Map((await answer.json()).beats.map((b) => [Math.round(b.at), b.summary]));
    for (const beat of beats[name]) {
      if (beat[3] === null) beat[3] = known.get(Math.round(beat[0])) ?? null;
    }
  } catch (err) {
    fetched[name] = false;
  }
}

const HEIGHT = { OK: 20, WARN: 13, CRIT: 7, UNKNOWN: 7 };

function slot(count, i) { return BEATS - count + i; }  // the newest beat on the right

async function showBeat(bar, index) {
  const name = bar.closest(".check").dataset.name;
  const mark = bar.querySelector(".current");
  mark.setAttribute("x", slot(beats[name].length, index));
  mark.classList.add("shown");
  bar.dataset.index = index;
  const info = bar.nextElementSibling;
  const beat = () => beats[name][index];
  info.textContent = beat() ? describe(beat()) : "";
  await summaries(name);
  if (Number(bar.dataset.index) === index && beat()) info.textContent = describe(beat());
}

function drawBar(bar, name) {
  const list = beats[name];
  const paths = { OK: "", WARN: "", CRIT: "", UNKNOWN: "" };
  list.forEach((b, i) => {
    const h = HEIGHT[b[1]];
    paths[b[1]] += `M${slot(list.length, i) + 0.1} 20v-${h}h0.8v${h}z`;
  });
  for (const [status, d] of Object.entries(paths)) {
    bar.querySelector(".s-" + status).setAttribute("d", d);
  }
  bar.dataset.count = list.length;
  bar.setAttribute("aria-label", "last " + list.length + " results of " + name +
    ": " + list.filter((b) => b[1] === "OK" || b[1] === "WARN").length + " passed");
}

function ms(value) { return value >= 100 ? value.toFixed(0) : value.toFixed(1); }

function redrawChart(el, list, spans) {
  const durations = list.map((b) => b[2]);
  if (durations.length < 2) return;
  // The usual band of the response time (its baseline), shaded behind the line.
  const low = parseFloat(el.dataset.low), high = parseFloat(el.dataset.high);
  const top = Math.max(...durations, high || 0, 0) || 1;
  if (high) {
    const band = el.querySelector(".band");
    band.setAttribute("y", (26 - high / top * 24).toFixed(1));
    band.setAttribute("height", ((high - low) / top * 24).toFixed(1));
  }
  const step = 120 / (BEATS - 1), offset = (BEATS - durations.length) * step;
  // A result inside an anomaly: its place on the chart is marked.
  el.querySelector(".marks").innerHTML = list.map((b, i) =>
    (spans || []).some(([a, z]) => b[0] >= a && b[0] <= z) ?
      '<rect x="' + (offset + (i - 0.5) * step).toFixed(1) + '" y="0" width="' +
      step.toFixed(1) + '" height="28"/>' : "").join("");
  el.querySelector("polyline").setAttribute("points", durations.map((d, i) =>
    (offset + i * step).toFixed(1) + "," + (26 - d / top * 24).toFixed(1)).join(" "));
  el.setAttribute("aria-label", "response time of the last results, up to " + ms(top) + " ms");
  el.nextElementSibling.textContent = "response time, top " + ms(top) + " ms";
}

function bind() {
  document.querySelectorAll(".check").forEach((el) => {
    const name = el.dataset.name;
    const bar = el.querySelector(".beats");
    beats[name] = beats[name] || [];
    drawBar(bar, name);
    redrawChart(el.querySelector(".chart"), beats[name], unusual[name]);
    bar.addEventListener("mousemove", (e) => {
      const count = beats[name].length;
      const i = Math.floor(e.offsetX / bar.clientWidth * BEATS) - (BEATS - count);
      if (i >= 0 && i < count && String(i) !== bar.dataset.index) showBeat(bar, i);
    });
    bar.addEventListener("focus", () => showBeat(bar, beats[name].length - 1));
    bar.addEventListener("keydown", (e) => {
      const count = beats[name].length;
      const i = Number(bar.dataset.index || count - 1);
      if (e.key === "ArrowLeft") showBeat(bar, Math.max(0, i - 1));
      else if (e.key === "ArrowRight") showBeat(bar, Math.min(count - 1, i + 1));
      else return;
      e.preventDefault();
    });
  });
}

function setState(el, state) {
  el.classList.remove("st-OK", "st-FAILING", "st-PENDING", "st-MAINTENANCE");
  el.classList.add("st-" + state);
  el.dataset.state = state;
  const mark = { OK: "✓", FAILING: "✕", PENDING: "…", MAINTENANCE: "⏸" }[state] || "";
  el.querySelector(".state").textContent = mark + " " + state;
}

// What the top line counts a check as, and what the state filter matches: a passing
// check whose last result was WARN is WARN, not OK too.
function category(el) {
  return el.dataset.state === "OK" && el.dataset.status === "WARN" ? "WARN" : el.dataset.state;
}

function recount() {
  const cards = [...document.querySelectorAll(".check")];
  for (const kind of ["OK", "WARN", "FAILING", "PENDING", "MAINTENANCE"]) {
    document.querySelector(`[data-count="${kind}"]`).textContent =
      cards.filter((c) => category(c) === kind).length;
  }
  document.querySelector('[data-count="healing"]').textContent =
    document.querySelectorAll('.service[data-healing="1"]').length;
  document.querySelector('[data-count="gave-up"]').textContent =
    document.querySelectorAll(".gave-up").length;
}

function filter() {
  const name = document.getElementById("filter-name").value.toLowerCase();
  const state = document.getElementById("filter-state").value;
  document.querySelectorAll(".check").forEach((el) => {
    const shown = el.dataset.name.toLowerCase().includes(name) && (!state || category(el) === state);
    el.classList.toggle("hidden", !shown);
  });
}
document.getElementById("filter-name").addEventListener("input", filter);
document.getElementById("filter-state").addEventListener("change", filter);

// Results can come hundreds a second with many checks: they are queued and applied
// once a frame, each chart redrawn and the counts made once however many came.
let queued = [];

function onResult(e) {
  if (queued.length === 0) requestAnimationFrame(applyResults);
  queued.push(e);
}

function applyResults() {
  const results = queued;
  queued = [];
  const dirty = new Set();
  let changed = false;
  for (const e of results) {
    const el = card(e.check);
    if (!el) continue;
    const list = beats[e.check];
    // A result the page already had (it came while the page was being taken anew).
    if (list.length && e.at <= list[list.length - 1][0] + 0.05) continue;
    list.push([e.at, e.status, e.duration_ms, e.summary]);
    if (list.length > BEATS) list.shift();
    const status = el.querySelector(".status");
    if (el.dataset.status !== e.status || el.dataset.state !== e.state) {
      status.textContent = e.status;
      status.className = "status s-" + e.status;
      el.dataset.status = e.status;
      setState(el, e.state);
      changed = true;
    }
    el.querySelector(".summary").textContent = e.summary;
    el.dataset.updated = e.at;
    dirty.add(e.check);
  }
  for (const name of dirty) {
    drawBar(card(name).querySelector(".beats"), name);
    redrawChart(card(name).querySelector(".chart"), beats[name], unusual[name]);
  }
  if (changed) { recount(); filter(); }
}

function onChange(e) {
  const el = card(e.check);
  if (!el) return;
  setState(el, e.shown || e.to);
  el.querySelector(".changed").textContent = "just now";
  recount();
  filter();
}

function onHeal(kind, e) {
  const el = document.getElementById("service-" + e.service);
  if (!el) return;
  if (kind === "heal.started") {
    el.dataset.healing = "1";
    el.querySelector(".svc-state").textContent = "healing";
  } else {
    el.dataset.healing = "0";
    const item = document.createElement("li");
    const word = kind.slice(5);
    item.textContent = "just now: " + (HEAL_WORDS[word] || word) +
      (e.recovery_s !== undefined ? " in " + e.recovery_s.toFixed(1) + " s" : "") +
      (e.reason && kind === "heal.failed" ? " (" + e.reason + ")" : "");
    el.querySelector(".heals").prepend(item);
    el.querySelector(".svc-state").textContent = kind === "heal.succeeded" ? "ready" : "backing off";
    if (kind === "heal.succeeded") el.querySelector(".gave-up")?.remove();
  }
  recount();
}

// While the page is taken anew, events wait here and are applied after it.
let pending = null;

function dispatch(kind, e) {
  if (pending) pending.push([kind, e]);
  else if (kind === "check.result") onResult(e);
  else if (kind === "check.state_changed") onChange(e);
  // A new set of checks, or a maintenance window that began or ended: the page anew.
  else if (kind === "config.reloaded" || kind === "maintenance.changed") refresh();
  else onHeal(kind, e);
}

async function refresh() {
  if (pending) return;
  pending = [];
  try {
    const answer = await fetch("/status", { cache: "no-store" });
    const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
    for (const id of ["summary", "services-list", "checks"]) {
      document.getElementById(id).replaceWith(document.adoptNode(doc.getElementById(id)));
    }
    load(doc);
    bind();
  } catch (err) {
    // What is shown stays; the next reconnect takes the page again.
  }
  const waiting = pending;
  pending = null;
  for (const [kind, e] of waiting) dispatch(kind, e);
  recount();
  filter();
}

function follow() {
  const source = new EventSource("/api/v1/events");
  source.onopen = () => { live.textContent = "live"; live.classList.add("on"); refresh(); };
  source.onerror = () => { live.textContent = "reconnecting…"; live.classList.remove("on"); };
  for (const kind of ["check.result", "check.state_changed", "config.reloaded",
                      "maintenance.changed",
                      "heal.started", "heal.succeeded", "heal.failed"]) {
    source.addEventListener(kind, (m) => dispatch(kind, JSON.parse(m.data)));
  }
}

const token = document.getElementById("token");
token.value = sessionStorage.getItem("vigil-token") || "";
token.addEventListener("change", () => sessionStorage.setItem("vigil-token", token.value));

// Delegated: the services are replaced when the page is taken anew.
document.addEventListener("click", async (e) => {
  const button = e.target.closest("button.heal");
  if (!button) return;
  const said = button.nextElementSibling;
  said.textContent = "healing…";
  button.disabled = true;
  try {
    const answer = await fetch(`/api/v1/services/${encodeURIComponent(button.dataset.service)}/heal`,
      { method: "POST", headers: { Authorization: "Bearer " + token.value } });
    const body = await answer.json();
    said.textContent = answer.ok
      ? "healed" + (body.recovery_s !== undefined ? " in " + body.recovery_s.toFixed(1) + " s" : "")
      : "not healed: " + (body.reason || body.error || "HTTP " + answer.status);
  } catch (err) {
    said.textContent = "no answer: " + err;
  } finally {
    button.disabled = false;
  }
});

load(document);
bind();
follow();
