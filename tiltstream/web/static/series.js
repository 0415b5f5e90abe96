"use strict";
// The tilt-series page: per-tilt results, the CTF plot, the tomogram with a z slider (raw and denoised).
(() => {
  const main = document.querySelector("main");
  const session = main.dataset.session;
  const name = main.dataset.series;
  const api = `/api/sessions/${session}/series/${encodeURIComponent(name)}`;
  const slider = document.getElementById("z");
  let volumes = {};
  let shownVersion = null;

  function image(url, alt, extra = "") {
    if (!url) return ts.el("span", { class: "muted", text: "–" });
    return ts.el("a", { href: url, target: "_blank" }, ts.el("img", { src: url, alt, loading: "lazy", class: extra }));
  }

  function showSlices() {
    const z = Number(slider.value);
    document.getElementById("z-value").textContent = String(z);
    for (const kind of ["raw", "denoised"]) {
      const volume = volumes[kind];
      const img = document.getElementById(`${kind}-slice`);
      document.getElementById(`${kind}-figure`).hidden = !volume;
      if (!volume) continue;
      // the two volumes may differ in depth: the same relative height in each
      const depth = volumes.raw ? volumes.raw.depth : volume.depth;
      const own = Math.min(volume.depth - 1, Math.round((z / Math.max(depth - 1, 1)) * (volume.depth - 1)));
      img.dataset.z = String(own);
      img.src = volume.slice_url_template.replace("{z}", String(own));
    }
  }

  function renderDownloads(tomogram) {
    const sizes = (bytes) => (bytes >= 1e6 ? `${ts.num(bytes / 1e6, 1)} MB` : `${ts.num(bytes / 1e3, 1)} kB`);
    const items = tomogram.downloads.map((d) =>
      ts.el("li", {}, ts.el("a", { href: d.url, download: d.file_name, text: d.file_name }), ts.el("span", { class: "muted", text: ` ${d.kind} · ${sizes(d.size_bytes)}` })),
    );
    document.getElementById("downloads").replaceChildren(...items);
    document.getElementById("relion").hidden = !tomogram.relion_project_url;
    if (tomogram.relion_project_url) document.getElementById("relion-link").href = tomogram.relion_project_url;
  }

  function renderTomogram(tomogram) {
    document.getElementById("no-tomogram").hidden = Boolean(tomogram);
    document.getElementById("tomogram").hidden = !tomogram;
    if (!tomogram) return;
    const info = [`version ${tomogram.version ?? "?"}`];
    if (tomogram.size_x_pixels) info.push(`${tomogram.size_x_pixels}×${tomogram.size_y_pixels}×${tomogram.size_z_pixels} px`);
    if (tomogram.pixel_spacing_angstroms) info.push(`${ts.num(tomogram.pixel_spacing_angstroms, 2)} Å/px`);
    if (tomogram.global_alignment_quality !== null) info.push(`alignment quality ${ts.num(tomogram.global_alignment_quality, 2)}`);
    if (tomogram.fsc_resolution_angstroms !== null && tomogram.fsc_resolution_angstroms !== undefined) {
      const from = tomogram.half_tomograms_from === "tilts" ? "alternating tilts" : "even/odd frames";
      info.push(`resolution ${ts.num(tomogram.fsc_resolution_angstroms, 1)} Å (FSC 0.143, ${from})`);
    }
    document.getElementById("tomogram-info").textContent = info.join(" · ");
    for (const [id, url] of [["xy-projection", tomogram.xy_projection_url], ["xz-projection", tomogram.xz_projection_url], ["alignment-plot", tomogram.alignment_plot_url]]) {
      const img = document.getElementById(id);
      img.closest("figure").hidden = !url;
      if (url && img.getAttribute("src") !== url) img.src = url;
    }
    renderDownloads(tomogram);
    volumes = Object.fromEntries(tomogram.volumes.map((v) => [v.kind, v]));
    const depth = (volumes.raw || volumes.denoised || { depth: 0 }).depth;
    document.querySelector(".slider").hidden = depth === 0;
    document.getElementById("z-depth").textContent = String(depth);
    if (shownVersion !== tomogram.version || Number(slider.max) !== depth - 1) {
      slider.max = String(Math.max(depth - 1, 0));
      slider.value = String(Math.floor(depth / 2));  // the central slice first
      shownVersion = tomogram.version;
    }
    showSlices();
  }

  function renderTilts(tilts) {
    const body = document.querySelector("#tilts tbody");
    body.replaceChildren(...tilts.map((tilt) => {
      const used = tilt.excluded === null ? "–" : tilt.excluded ? `excluded: ${tilt.exclusion_reason || "no reason recorded"}` : "used";
      return ts.el("tr", { class: tilt.excluded ? "excluded" : null, "data-number": String(tilt.number) },
        ts.el("td", { class: "num", text: String(tilt.number) }),
        ts.el("td", { class: "num", text: ts.num(tilt.tilt_angle_degrees, 1) }),
        ts.el("td", {}, image(tilt.micrograph_url, `micrograph of tilt ${tilt.number}`)),
        ts.el("td", {}, image(tilt.power_spectrum_url, `power spectrum of tilt ${tilt.number}`)),
        ts.el("td", {}, image(tilt.drift_plot_url, `drift of tilt ${tilt.number}`, "drift")),
        ts.el("td", { class: "num", text: ts.num(tilt.total_motion_angstroms, 1) }),
        ts.el("td", { class: "num", text: ts.num(tilt.defocus_micrometres, 2) }),
        ts.el("td", { class: "num", text: ts.num(tilt.astigmatism_angstroms, 0) }),
        ts.el("td", { class: "num", text: ts.num(tilt.fit_resolution_angstroms, 1) }),
        ts.el("td", { class: "num", text: ts.num(tilt.alignment_residual_angstroms, 1) }),
        ts.el("td", { class: "num", text: ts.num(tilt.alignment_correlation, 2) }),
        ts.el("td", { class: "used", text: used }),
      );
    }));
  }

  async function load() {
    const detail = await ts.json(api);
    const summary = detail.summary;
    document.getElementById("state").replaceChildren(ts.badge(summary.state));
    const expected = summary.expected_tilts ? ` of ${summary.expected_tilts}` : "";
    const used = summary.used_tilts === null ? "" : ` · ${summary.used_tilts} used, ${summary.excluded_tilts} excluded`;
    document.getElementById("counts").textContent =
      `${summary.acquired_tilts}${expected} tilts acquired · ${summary.corrected_tilts} motion-corrected · ` +
      `${summary.ctf_tilts} with CTF${used} · last tilt ${ts.ago(summary.last_tilt_at)}` +
      (summary.message ? ` · ${summary.message}` : "");
    document.getElementById("ctf-plot").src = `${detail.ctf_plot_url}?n=${detail.tilts.length}-${summary.ctf_tilts}`;
    renderTilts(detail.tilts);
    renderTomogram(detail.tomogram);
    main.dataset.loaded = String(Number(main.dataset.loaded || 0) + 1);
  }

  slider.addEventListener("input", showSlices);
  let pending = null;
  ts.follow(session, (summary) => {
    if (summary.name !== name) return;
    clearTimeout(pending);
    pending = setTimeout(() => load().catch(() => {}), 400);
  });
  load().catch((error) => { document.getElementById("counts").textContent = `could not load: ${error.message}`; });
})();
