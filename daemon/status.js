// vigil's status page: follows /api/v1/events and updates the page in place.
"use strict";
const data = JSON.parse(document.getElementById("vigil-data").textContent);
const BEATS = 60;
const live = document.getElementById("live");

function card(name) { return document.getElementById("check-" + name); }

function describe(beat) {
  const [at, status, duration, summary] = beat;
  return new Date(at * 1000).toLocaleTimeString() + " · " + status + " · " +
    duration.toFixed(1) + " ms" + (summary ? " · " + summary : "");
}

function beatsOf(name) {
  // Summaries are kept only where they changed: carry each one forward.
  let said = "";
  return (data[name] ? data[name].beats : []).map((b) => {
    said = b[3] === null ? said : b[3];
    return [b[0], b[1], b[2], said];
  });
}

function showBeat(bar, index) {
  const name = bar.closest(".check").dataset.name;
  const beats = beatsOf(name);
  const marks = bar.querySelectorAll(".b");
  marks.forEach((m, i) => m.classList.toggle("current", i === index));
  bar.nextElementSibling.textContent = beats[index] ? describe(beats[index]) : "";
  bar.dataset.index = index;
}

document.querySelectorAll(".beats").forEach((bar) => {
  bar.addEventListener("mouseover", (e) => {
    const marks = [...bar.querySelectorAll(".b")];
    const i = marks.indexOf(e.target);
    if (i >= 0) showBeat(bar, i);
  });
  bar.addEventListener("focus", () => showBeat(bar, bar.querySelectorAll(".b").length - 1));
  bar.addEventListener("keydown", (e) => {
    const count = bar.querySelectorAll(".b").length;
    const i = Number(bar.dataset.index || count - 1);
    if (e.key === "ArrowLeft") showBeat(bar, Math.max(0, i - 1));
    else if (e.key === "ArrowRight") showBeat(bar, Math.min(count - 1, i + 1));
    else return;
    e.preventDefault();
  });
});

function redrawChart(el, beats) {
  const durations = beats.map((b) => b[2]);
  const top = Math.max(...durations, 0) || 1;
  const step = 120 / (BEATS - 1), offset = (BEATS - durations.length) * step;
  el.querySelector("polyline").setAttribute("points", durations.map((d, i) =>
    (offset + i * step).toFixed(1) + "," + (26 - d / top * 24).toFixed(1)).join(" "));
  el.setAttribute("aria-label", "response time of the last results, up to " + top.toFixed(1) + " ms");
}

function setState(el, state) {
  el.classList.remove("st-OK", "st-FAILING", "st-PENDING");
  el.classList.add("st-" + state);
  el.dataset.state = state;
  const mark = { OK: "✓", FAILING: "✕", PENDING: "…" }[state] || "";
  el.querySelector(".state").textContent = mark + " " + state;
}

function recount() {
  const cards = [...document.querySelectorAll(".check")];
  for (const state of ["OK", "FAILING", "PENDING"]) {
    document.querySelector(`[data-count="${state}"]`).textContent =
      cards.filter((c) => c.dataset.state === state).length;
  }
  document.querySelector('[data-count="WARN"]').textContent =
    cards.filter((c) => c.querySelector(".status").textContent === "WARN").length;
}

function onResult(e) {
  const el = card(e.check);
  if (!el) return;
  const entry = data[e.check] || (data[e.check] = { beats: [] });
  entry.beats.push([e.at, e.status, e.duration_ms, e.summary]);
  if (entry.beats.length > BEATS) entry.beats.shift();
  const bar = el.querySelector(".beats");
  const mark = document.createElement("i");
  mark.className = "b s-" + e.status;
  bar.appendChild(mark);
  while (bar.children.length > BEATS) bar.removeChild(bar.firstChild);
  bar.setAttribute("aria-label", "last " + bar.children.length + " results of " + e.check);
  const status = el.querySelector(".status");
  status.textContent = e.status;
  status.className = "status s-" + e.status;
  el.querySelector(".summary").textContent = e.summary;
  el.dataset.updated = e.at;
  setState(el, e.state);
  redrawChart(el.querySelector(".chart"), entry.beats);
  recount();
}

function onChange(e) {
  const el = card(e.check);
  if (!el) return;
  setState(el, e.new);
  el.querySelector(".changed").textContent = "just now";
  recount();
}

function follow() {
  const source = new EventSource("/api/v1/events");
  source.onopen = () => { live.textContent = "live"; live.classList.add("on"); };
  source.onerror = () => { live.textContent = "reconnecting…"; live.classList.remove("on"); };
  source.addEventListener("check.result", (m) => onResult(JSON.parse(m.data)));
  source.addEventListener("check.state_changed", (m) => onChange(JSON.parse(m.data)));
  for (const kind of ["heal.succeeded", "heal.failed"]) {
    source.addEventListener(kind, (m) => {
      const e = JSON.parse(m.data);
      const el = document.getElementById("service-" + e.service);
      if (!el) return;
      const item = document.createElement("li");
      item.textContent = "just now: " + kind.slice(5) +
        (e.recovery_s !== undefined ? " in " + e.recovery_s.toFixed(2) + "s" : "");
      el.querySelector(".heals").prepend(item);
      if (kind === "heal.succeeded") el.querySelector(".gave-up")?.remove();
    });
  }
}

const token = document.getElementById("token");
token.value = sessionStorage.getItem("vigil-token") || "";
token.addEventListener("change", () => sessionStorage.setItem("vigil-token", token.value));

document.querySelectorAll("button.heal").forEach((button) => {
  button.addEventListener("click", async () => {
    const said = button.nextElementSibling;
    said.textContent = "healing…";
    button.disabled = true;
    try {
      const answer = await fetch(`/api/v1/services/${encodeURIComponent(button.dataset.service)}/heal`,
        { method: "POST", headers: { Authorization: "Bearer " + token.value } });
      const body = await answer.json();
      said.textContent = answer.ok ? "healed: " + body.outcome : "not healed: " + (body.error || body.reason || answer.status);
    } catch (err) {
      said.textContent = "no answer: " + err;
    } finally {
      button.disabled = false;
    }
  });
});

function filter() {
  const name = document.getElementById("filter-name").value.toLowerCase();
  const state = document.getElementById("filter-state").value;
  document.querySelectorAll(".check").forEach((el) => {
    const shown = el.dataset.name.toLowerCase().includes(name) && (!state || el.dataset.state === state);
    el.classList.toggle("hidden", !shown);
  });
}
document.getElementById("filter-name").addEventListener("input", filter);
document.getElementById("filter-state").addEventListener("change", filter);

follow();
