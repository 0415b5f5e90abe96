"use strict";
// The session page: one row per tilt series, kept current by the status events (no reloads).
(() => {
  const main = document.querySelector("main");
  const session = main.dataset.session;
  const body = document.querySelector("#series tbody");
  const rows = new Map();

  function cell(text, numeric = false) {
    return ts.el("td", { class: numeric ? "num" : null, text: text === null || text === undefined ? "–" : String(text) });
  }

  function render(summary, fresh) {
    const existing = rows.get(summary.name);
    const row = ts.el("tr", { "data-series": summary.name, "data-state": summary.state, class: fresh ? "new" : null });
    let thumb = ts.el("div", { class: "thumb missing", title: "no tomogram yet" });
    const previous = existing && existing.querySelector("img.thumb");
    if (summary.central_slice_url) {
      thumb = ts.el("img", { class: "thumb missing", alt: `central slice of ${summary.name}` });
      if (previous && previous.dataset.url === summary.central_slice_url && !previous.classList.contains("missing")) {
        thumb.src = previous.src;
        thumb.className = "thumb";
      } else {
        thumb.addEventListener("load", () => thumb.classList.remove("missing"));
        ts.retryingImage(thumb, summary.central_slice_url);
      }
      thumb.dataset.url = summary.central_slice_url;
    }
    const link = ts.el("a", { href: `/sessions/${session}/series/${encodeURIComponent(summary.name)}`, text: summary.name });
    const expected = summary.expected_tilts ? ` / ${summary.expected_tilts}` : "";
    const last = ts.el("td", { class: "ago", "data-time": summary.last_tilt_at || "", text: ts.ago(summary.last_tilt_at) });
    row.append(
      ts.el("td", {}, thumb),
      ts.el("td", { class: "name" }, link),
      ts.el("td", {}, ts.badge(summary.state)),
      cell(`${summary.acquired_tilts}${expected}`, true),
      cell(summary.corrected_tilts, true),
      cell(summary.ctf_tilts, true),
      cell(summary.used_tilts, true),
      cell(summary.excluded_tilts, true),
      cell(summary.failed_tilts, true),
      cell(summary.latest_version || "–", true),
      last,
      summary.state === "failed"
        ? ts.el("td", {}, ts.el("a", { href: `/sessions/${session}/failures`, text: summary.message || "what failed" }))
        : cell(summary.message || ""),
    );
    if (existing) existing.replaceWith(row);
    else body.append(row);
    rows.set(summary.name, row);
    totals();
  }

  function totals() {
    const states = {};
    for (const row of rows.values()) states[row.dataset.state] = (states[row.dataset.state] || 0) + 1;
    const parts = Object.entries(states).map(([state, count]) => `${count} ${state}`);
    document.getElementById("totals").textContent = `${rows.size} tilt series` + (parts.length ? `: ${parts.join(", ")}` : "");
    document.getElementById("empty").hidden = rows.size > 0;
  }

  setInterval(() => {
    for (const td of body.querySelectorAll("td.ago")) td.textContent = ts.ago(td.dataset.time);
  }, 1000);

  ts.json(`/api/sessions/${session}`).then((view) => {
    if (view.microscope) document.getElementById("microscope").textContent = `on ${view.microscope}`;
    for (const summary of view.series) if (!rows.has(summary.name)) render(summary, false);
    totals();
  }).catch((error) => { document.getElementById("totals").textContent = `could not load the session: ${error.message}`; });
  ts.follow(session, (summary) => render(summary, !rows.has(summary.name)));
})();
