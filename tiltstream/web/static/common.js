"use strict";
// Shared helpers of the tiltstream pages (no build step, no libraries).
const ts = {
  el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  },
  async json(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  },
  num(value, digits = 1) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  },
  ago(iso) {
    if (!iso) return "–";
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 90) return `${Math.round(seconds)} s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h ago`;
    return `${Math.round(seconds / 86400)} days ago`;
  },
  badge(state) {
    return ts.el("span", { class: `state ${state}`, text: state });
  },
  // An image that is not there yet (the sink writes ISPyB a moment after the status): try again a few times.
  retryingImage(img, url, tries = 12) {
    let left = tries;
    img.onerror = () => {
      if (--left > 0) setTimeout(() => { img.src = url + (url.includes("?") ? "&" : "?") + "r=" + left; }, 1500);
      else img.classList.add("missing");
    };
    img.src = url;
  },
  // Follow the session's status events; calls onStatus(summary) for each.
  follow(session, onStatus) {
    const badge = document.getElementById("live");
    const source = new EventSource(`/api/sessions/${session}/events`);
    source.addEventListener("open", () => { badge.hidden = false; badge.classList.remove("down"); badge.textContent = "live"; });
    source.addEventListener("error", () => { badge.hidden = false; badge.classList.add("down"); badge.textContent = "reconnecting"; });
    source.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
    return source;
  },
};
