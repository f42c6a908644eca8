// genvision web app: one page, hash routes, plain DOM. Every call goes to /api/ with the session
// cookie; errors show the server's one line in #msg.
"use strict";

const main = document.getElementById("main");
const msgBox = document.getElementById("msg");
let timers = [];
let generation = 0; // bumps on navigation: callbacks of an old page stop

function say(text, kind) {
  msgBox.textContent = text;
  msgBox.className = kind === "info" ? "info" : "";
  msgBox.hidden = !text;
}

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  if (opts.json !== undefined) {
    opts.method = opts.method || "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(opts.json);
    delete opts.json;
  }
  const r = await fetch(path, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function every(ms, fn) {
  const g = generation;
  let busy = false;
  const tick = async () => {
    if (g !== generation || busy) return;
    busy = true;
    try { await fn(); } catch (e) { say(e.message); } finally { busy = false; }
  };
  timers.push(setInterval(tick, ms));
  tick();
}

const fmt = (v, d = 3) => (typeof v === "number" ? (Math.abs(v) >= 1000 ? v.toFixed(0) : +v.toPrecision(d)) : v ?? "");
const secs = (s) => (s >= 90 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);
const runHash = (page, name) => `#/${page}/${encodeURIComponent(name)}`;
const fileUrl = (run, rel, t) => `/files/${run.split("/").map(encodeURIComponent).join("/")}/${rel}${t ? "?t=" + t : ""}`;

function progressBlock(p, status) {
  if (!p) return el("div", { class: "muted" }, "no training records yet");
  const live = status === "training" || status === "running";
  return el("div", { class: "progress", "data-fraction": p.fraction.toFixed(4) },
    el("div", { class: "bar" }, el("div", { style: `width:${(100 * p.fraction).toFixed(1)}%` })),
    el("div", { class: "muted" },
      `step ${p.step} · ${p.loss_name || "loss"} ${fmt(p.loss)} · ${fmt(p.img_per_s)} img/s` +
      (live && p.eta ? ` · ETA ${secs(p.eta)}` : "") + ` · ${p.total}`));
}

// ---------------------------------------------------------------- Runs
async function pageRuns() {
  main.replaceChildren(el("h1", {}, "Runs"));
  const sort = el("select", { id: "sort", onchange: () => draw() },
    el("option", { value: "modified" }, "newest first"), el("option", { value: "name" }, "name"),
    el("option", { value: "fid" }, "FID (best first)"), el("option", { value: "status" }, "status"));
  const root = el("div", { class: "muted" });
  const cards = el("div", { class: "cards", id: "cards" });
  main.append(el("div", { class: "row" }, el("label", {}, "sort by", sort)), root, cards);
  let runs = [];
  function draw() {
    const key = sort.value;
    const sorted = runs.slice().sort((a, b) => {
      if (key === "name") return a.name.localeCompare(b.name);
      if (key === "fid") return (a.metrics.fid ?? Infinity) - (b.metrics.fid ?? Infinity);
      if (key === "status") return a.status.localeCompare(b.status);
      return b.modified - a.modified;
    });
    cards.replaceChildren(...sorted.map((r) => el("div", { class: "card", "data-run": r.name },
      el("h3", {}, el("a", { href: runHash("run", r.name) }, r.name)),
      el("div", { class: "muted" }, `${r.model} · ${r.data || "?"} · `, el("span", { class: `badge ${r.status}` }, r.status)),
      r.grid ? el("img", { class: "grid", alt: "samples", src: fileUrl(r.name, r.grid, Math.round(r.modified)) }) : null,
      r.status === "training" || r.status === "stale" || r.status === "interrupted" ? progressBlock(r.progress, r.status) : null,
      el("div", { class: "muted" }, Object.entries(r.metrics).map(([k, v]) => `${k} ${fmt(v)}`).join(" · ")),
      r.has_weights ? el("div", {}, el("a", { href: runHash("sample", r.name) }, "sample"), " · ",
        el("a", { href: `#/apps?run=${encodeURIComponent(r.name)}` }, "apps")) : null)));
    if (!runs.length) cards.replaceChildren(el("p", {}, "No runs yet: train one on the Train page, or run `make demo`."));
  }
  let last = "";
  every(1500, async () => {
    const d = await api("/api/runs");
    root.textContent = d.root;
    const sig = JSON.stringify(d.runs);
    if (sig !== last) { last = sig; runs = d.runs; draw(); }
  });
}

// ---------------------------------------------------------------- Run
async function pageRun(name) {
  main.replaceChildren(el("h1", {}, name));
  const head = el("div"), jobsBox = el("div", { class: "jobs" }), body = el("div");
  main.append(head, jobsBox, body);
  let drawnReport = null;
  every(2000, async () => {
    const [r, jobs] = await Promise.all([api(`/api/run?run=${encodeURIComponent(name)}`), api("/api/jobs")]);
    const mine = jobs.jobs.filter((j) => j.run === name);
    head.replaceChildren(...[
      el("div", { class: "muted" }, `${r.model} (${r.family}) · ${r.data} · `, el("span", { class: `badge ${r.status}` }, r.status)),
      r.status !== "finished" ? progressBlock(r.progress, r.status) : null,
      el("div", { class: "row" },
        r.has_weights ? el("a", { href: runHash("sample", name) }, el("button", { class: "primary" }, "Sample")) : null,
        r.has_weights ? el("a", { href: `#/apps?run=${encodeURIComponent(name)}` }, el("button", {}, "Apps")) : null,
        el("button", { id: "evaluate", disabled: !r.has_weights || mine.some((j) => j.state === "running"), onclick: async () => {
          try { await api("/api/evaluate", { json: { run: name } }); say("evaluation started", "info"); } catch (e) { say(e.message); }
        } }, "Evaluate"),
        r.status !== "finished" ? el("button", { id: "resume", disabled: mine.some((j) => j.state === "running"), onclick: async () => {
          try { await api("/api/resume", { json: { run: name } }); say("resumed", "info"); } catch (e) { say(e.message); }
        } }, "Resume") : null,
        r.has_weights ? el("a", { href: runHash("quiz", name) }, el("button", {}, "Real or generated? (quiz)")) : null)].filter(Boolean));
    jobsBox.replaceChildren(...mine.slice(0, 3).map(jobBlock));
    const key = (r.report_html || "") + JSON.stringify(r.human);
    if (key !== drawnReport) {
      drawnReport = key;
      const report = el("div", { class: "report" });
      report.innerHTML = r.report_html || "<p>No report yet (written when training ends).</p>";
      body.replaceChildren(...[
        r.human && r.human.judgements ? el("p", {}, `Human error rate ${fmt(r.human.error_rate)} ` +
          `(95% CI ${fmt(r.human.ci95[0])}–${fmt(r.human.ci95[1])}, ${r.human.judgements} judgements; 0.5 = indistinguishable)`) : null,
        report, el("details", {}, el("summary", {}, "config.json"), el("pre", {}, JSON.stringify(r.config, null, 2)))].filter(Boolean));
    }
  });
}

function jobBlock(j) {
  return el("div", { class: "job", "data-job": j.id },
    el("div", {}, el("span", { class: `badge ${j.state}` }, j.state), ` ${j.kind} · ${secs(j.seconds)} · `,
      el("code", {}, j.command),
      j.state === "running" ? el("button", { class: "stop", onclick: async () => {
        try { await api(`/api/jobs/${j.id}/stop`, { method: "POST" }); } catch (e) { say(e.message); }
      } }, "Stop") : null),
    j.error ? el("div", { class: "muted", style: "color:var(--bad)" }, j.error) :
      el("div", { class: "muted" }, (j.log || []).slice(-1)[0] || ""));
}

// ---------------------------------------------------------------- Sample
async function pageSample(name) {
  main.replaceChildren(el("h1", {}, `Sample · ${name}`), el("p", { class: "muted" }, "loading the model…"));
  const o = await api(`/api/run/options?run=${encodeURIComponent(name)}`);
  const f = {};
  const field = (label, input) => el("label", {}, label, input);
  f.n = el("input", { id: "n", type: "number", min: 1, max: 256, value: 16, style: "width:80px" });
  f.seed = el("input", { id: "seed", type: "number", min: 0, value: 0, style: "width:100px" });
  const fields = [field("images", f.n), field("seed", f.seed)];
  if (o.accepts.includes("sampler")) {
    f.sampler = el("select", { id: "sampler" }, el("option", { value: "" }, `model's (${o.sampler})`),
      ...(o.samplers || []).map((s) => el("option", { value: s }, s)));
    fields.push(field("sampler", f.sampler));
  }
  if (o.accepts.includes("steps")) { f.steps = el("input", { id: "steps", type: "number", min: 1, placeholder: o.steps ?? "", style: "width:80px" }); fields.push(field("steps", f.steps)); }
  if (o.accepts.includes("guidance_scale")) { f.guidance_scale = el("input", { id: "guidance", type: "number", step: "0.5", placeholder: "model's", style: "width:90px" }); fields.push(field("guidance", f.guidance_scale)); }
  if (o.accepts.includes("temperature")) { f.temperature = el("input", { id: "temperature", type: "number", step: "0.1", placeholder: "1.0", style: "width:90px" }); fields.push(field("temperature", f.temperature)); }
  if (o.accepts.includes("truncation")) { f.truncation = el("input", { id: "truncation", type: "number", step: "0.1", placeholder: "1.0", style: "width:90px" }); fields.push(field("truncation", f.truncation)); }
  if (o.conditional) {
    f.label = el("select", { id: "label" }, el("option", { value: "" }, "cycle 0, 1, 2, …"),
      ...Array.from({ length: o.num_classes }, (_, k) => el("option", { value: k }, o.class_names[k] ? `${k} ${o.class_names[k]}` : k)));
    fields.push(field("class", f.label));
  }
  if (o.prompts) { f.prompt = el("input", { id: "prompt", type: "text", placeholder: "a caption", style: "width:260px" }); fields.push(field("prompt", f.prompt)); }
  const status = el("div", { class: "muted", id: "sample-status" });
  const out = el("div", { class: "samples", id: "samples" });
  const go = el("button", { class: "primary", id: "go", onclick: () => run() }, "Sample");
  const again = el("button", { id: "same-seed", onclick: () => run() }, "Same seed again");
  const next = el("button", { id: "new-seed", onclick: () => { f.seed.value = +f.seed.value + 1; run(); } }, "New seed");
  main.replaceChildren(el("h1", {}, `Sample · ${name}`), el("div", { class: "muted" }, `${o.model} · ${o.image_size}×${o.image_size}×${o.channels}`),
    el("div", { class: "row" }, ...fields, go, again, next), status, out);
  let current = 0;
  async function run() {
    const mine = ++current;
    const body = { run: name };
    for (const [k, input] of Object.entries(f)) if (input.value !== "") body[k] = input.value;
    if (body.label === undefined && o.conditional) body.label = null;
    out.replaceChildren();
    const t0 = performance.now();
    status.textContent = "sampling…";
    go.disabled = true;
    try {
      const { task } = await api("/api/sample", { json: body });
      let since = 0;
      for (;;) {
        if (mine !== current) return;
        const s = await api(`/api/tasks/${task}?since=${since}`);
        for (const it of s.items) {
          out.append(el("figure", { "data-k": it.k },
            el("img", { src: it.png, alt: `image ${it.k}`, "data-k": it.k }),
            el("figcaption", {}, `#${it.k} `, el("a", { href: `/api/tasks/${task}/image/${it.k}.png`, download: `seed${body.seed}_image${it.k}.png` }, "PNG"))));
          if (since === 0) status.dataset.firstMs = Math.round(performance.now() - t0);
        }
        since = s.count;
        status.textContent = `${s.count} / ${s.total} images · ${((performance.now() - t0) / 1000).toFixed(1)} s`;
        if (s.error) throw new Error(s.error);
        if (s.done) {
          status.replaceChildren(`${s.total} images in ${(s.result.seconds).toFixed(2)} s of sampling · ${s.result.start} · `,
            el("a", { href: `/api/tasks/${task}/images.npz`, id: "npz" }, "all as npz"));
          status.dataset.done = "1";
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (e) { say(e.message); status.textContent = ""; } finally { go.disabled = false; }
  }
}

// ---------------------------------------------------------------- Apps
async function pageApps(params) {
  main.replaceChildren(el("h1", {}, "Apps"));
  const runs = (await api("/api/runs")).runs.filter((r) => r.has_weights);
  if (!runs.length) { main.append(el("p", {}, "No trained model yet: train one first.")); return; }
  const pick = el("select", { id: "app-run" }, ...runs.map((r) => el("option", { value: r.name }, `${r.name} (${r.model})`)));
  if (params.get("run")) pick.value = params.get("run");
  const box = el("div");
  pick.addEventListener("change", () => { location.hash = `#/apps?run=${encodeURIComponent(pick.value)}`; });
  main.append(el("div", { class: "row" }, el("label", {}, "model", pick)), box);
  const o = await api(`/api/run/options?run=${encodeURIComponent(pick.value)}`);
  const names = Object.keys(o.apps);
  if (!names.length) { box.append(el("p", {}, `${o.model} runs no application (restoration, translation, editing or interpolation).`)); return; }
  const tabs = el("div", { class: "row", id: "app-tabs" });
  const area = el("div");
  box.append(tabs, area);
  let app = params.get("app") && o.apps[params.get("app")] ? params.get("app") : names[0];
  const thumbs = await api(`/api/run/images?run=${encodeURIComponent(pick.value)}&n=16`);
  function drawTabs() {
    tabs.replaceChildren(...names.map((a) => el("button", { class: a === app ? "primary" : "", "data-app": a, onclick: () => { app = a; drawTabs(); drawApp(); } }, a)));
  }
  drawTabs();
  drawApp();

  function drawApp() {
    const chosen = [];
    const want = app === "interpolate" ? 2 : 1;
    const thumbRow = el("div", { class: "thumbs", id: "thumbs" });
    const upload = el("input", { type: "file", accept: "image/*", id: "upload" });
    const canvasBox = el("div");
    const result = el("div", { class: "panels", id: "result" });
    const status = el("div", { class: "muted", id: "app-status" });
    let painter = null;
    function choose(src, png, img) {
      if (want === 1) { chosen.length = 0; thumbRow.querySelectorAll("img").forEach((i) => i.classList.remove("sel")); }
      else if (chosen.length >= 2) { chosen.shift(); }
      chosen.push(src);
      if (img) img.classList.add("sel");
      if (app === "inpaint") { painter = makePainter(png, o.image_size); canvasBox.replaceChildren(painter.node); }
    }
    for (const t of thumbs.images) {
      const img = el("img", { src: t.png, alt: `test image ${t.index}`, "data-index": t.index });
      img.addEventListener("click", () => choose({ test: t.index }, t.png, img));
      thumbRow.append(img);
    }
    upload.addEventListener("change", async () => {
      if (!upload.files.length) return;
      const fd = new FormData();
      fd.append("file", upload.files[0]);
      try {
        const u = await api(`/api/upload?run=${encodeURIComponent(pick.value)}`, { method: "POST", body: fd });
        choose({ upload: u.upload }, u.png, null);
        say(`uploaded ${u.width}×${u.height}`, "info");
      } catch (e) { say(e.message); }
    });
    const p = {};
    const controls = [el("label", {}, "seed", p.seed = el("input", { type: "number", value: 0, min: 0, style: "width:80px" }))];
    if (app === "upscale") controls.push(el("label", {}, "scale", p.scale = el("select", { id: "scale" }, ...o.apps.upscale.scales.map((s) => el("option", { value: s }, `${s}×`)))));
    if (app === "translate") {
      const v = el("span", {}, "0.5");
      p.strength = el("input", { type: "range", min: 0, max: 1, step: 0.05, value: 0.5, id: "strength", oninput: () => { v.textContent = p.strength.value; } });
      controls.push(el("label", {}, el("span", {}, "strength ", v), p.strength));
    }
    if (app === "edit") {
      const list = el("datalist", { id: "attrs" }, ...o.apps.edit.attributes.map((a) => el("option", { value: a })));
      p.attribute = el("input", { list: "attrs", id: "attribute", value: o.apps.edit.attributes[0] || "", style: "width:160px" });
      const v = el("span", {}, "1");
      p.amount = el("input", { type: "range", min: -3, max: 3, step: 0.25, value: 1, id: "amount", oninput: () => { v.textContent = p.amount.value; } });
      controls.push(el("label", {}, "attribute", p.attribute, list), el("label", {}, el("span", {}, "amount ", v), p.amount));
    }
    if (app === "interpolate") controls.push(el("label", {}, "frames", p.frames = el("input", { type: "number", value: 8, min: 2, max: 32, style: "width:70px" })));
    const go = el("button", { class: "primary", id: "run-app", onclick: runApp }, `Run ${app}`);
    area.replaceChildren(
      el("p", { class: "muted" }, want === 2 ? "Pick two images (test images of the model's data, or upload)." :
        app === "inpaint" ? "Pick an image, then paint the pixels to fill." : "Pick a test image or upload one."),
      el("div", { class: "split" },
        el("div", {}, thumbRow, el("div", {}, "or upload: ", upload), canvasBox, el("div", { class: "row" }, ...controls, go), status),
        result));

    async function runApp() {
      if (chosen.length < want) { say(want === 2 ? "pick two images" : "pick an image first"); return; }
      const params = {};
      for (const [k, input] of Object.entries(p)) params[k] = input.value;
      const body = { run: pick.value, images: chosen.slice(), params };
      if (app === "inpaint") body.mask = painter ? painter.mask() : null;
      go.disabled = true;
      status.textContent = `running ${app}…`;
      const t0 = performance.now();
      try {
        const { task } = await api(`/api/apps/${app}`, { json: body });
        for (;;) {
          const s = await api(`/api/tasks/${task}`);
          if (s.error) throw new Error(s.error);
          if (s.done) {
            const r = s.items[0];
            result.replaceChildren(...r.panels.map((pn) => el("div", { class: "panel", "data-title": pn.title },
              el("div", { class: "muted" }, pn.title), ...pn.png.map((src) => el("img", { src, alt: pn.title })))));
            status.textContent = `${r.note} · ${((performance.now() - t0) / 1000).toFixed(1)} s`;
            status.dataset.done = "1";
            break;
          }
          status.textContent = `running ${app}… ${((performance.now() - t0) / 1000).toFixed(1)} s`;
          await new Promise((res) => setTimeout(res, 150));
        }
      } catch (e) { say(e.message); status.textContent = ""; } finally { go.disabled = false; }
    }
  }
}

// a canvas showing the image with a red mask painted over it; mask() is a PNG of the mask at the model's size
function makePainter(png, size) {
  const view = 256;
  const canvas = el("canvas", { class: "paint", id: "paint", width: view, height: view });
  const mask = document.createElement("canvas");
  mask.width = mask.height = view;
  const mctx = mask.getContext("2d");
  const ctx = canvas.getContext("2d");
  const img = new Image();
  let brush = Math.max(16, Math.round(view / size)), erase = false, down = false;
  img.onload = draw;
  img.src = png;
  function draw() {
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(img, 0, 0, view, view);
    ctx.globalAlpha = 0.55;
    ctx.drawImage(mask, 0, 0);
    ctx.globalAlpha = 1;
  }
  function paint(ev) {
    const r = canvas.getBoundingClientRect();
    const x = ((ev.clientX - r.left) * view) / r.width, y = ((ev.clientY - r.top) * view) / r.height;
    mctx.globalCompositeOperation = erase ? "destination-out" : "source-over";
    mctx.fillStyle = "#ff2a2a";
    mctx.beginPath();
    mctx.arc(x, y, brush / 2, 0, 2 * Math.PI);
    mctx.fill();
    draw();
  }
  canvas.addEventListener("pointerdown", (ev) => { down = true; canvas.setPointerCapture(ev.pointerId); paint(ev); });
  canvas.addEventListener("pointermove", (ev) => { if (down) paint(ev); });
  canvas.addEventListener("pointerup", () => { down = false; });
  const size_ = el("input", { type: "range", min: 4, max: 96, value: brush, id: "brush", oninput: (e) => { brush = +e.target.value; } });
  const eraseBox = el("input", { type: "checkbox", id: "erase", onchange: (e) => { erase = e.target.checked; } });
  const clear = el("button", { id: "clear-mask", onclick: () => { mctx.clearRect(0, 0, view, view); draw(); } }, "Clear");
  const node = el("div", {}, canvas, el("div", { class: "row" }, el("label", {}, "brush", size_), el("label", {}, "erase", eraseBox), clear));
  return {
    node,
    mask() {
      const small = document.createElement("canvas");
      small.width = small.height = size;
      const s = small.getContext("2d");
      s.fillStyle = "#000";
      s.fillRect(0, 0, size, size);
      s.drawImage(mask, 0, 0, size, size); // a model pixel a quarter painted or more is missing
      const d = s.getImageData(0, 0, size, size);
      for (let i = 0; i < d.data.length; i += 4) { const v = d.data[i] >= 64 ? 255 : 0; d.data[i] = d.data[i + 1] = d.data[i + 2] = v; d.data[i + 3] = 255; }
      s.putImageData(d, 0, 0);
      return small.toDataURL("image/png");
    },
  };
}

// ---------------------------------------------------------------- Train
async function pageTrain() {
  const models = (await api("/api/models")).models;
  const f = {
    model: el("select", { id: "model" }, ...models.map((m) => el("option", { value: m.name, title: m.summary }, `${m.name} (${m.family})`))),
    data: el("input", { id: "data", value: "digits", style: "width:260px" }),
    minutes: el("input", { id: "minutes", type: "number", step: "0.5", placeholder: "", style: "width:80px" }),
    steps: el("input", { id: "steps", type: "number", placeholder: "1000", style: "width:90px" }),
    batch_size: el("input", { id: "batch", type: "number", placeholder: "model's", style: "width:90px" }),
    name: el("input", { id: "name", placeholder: "model-time", style: "width:200px" }),
  };
  const settings = el("input", { id: "settings", placeholder: "KEY=VALUE … (e.g. lr=0.0005 train.log_every=5)", style: "width:420px" });
  f.model.value = models.some((m) => m.name === "ddpm") ? "ddpm" : models[0].name;
  const start = el("button", { class: "primary", id: "start", onclick: async () => {
    const body = {};
    for (const [k, input] of Object.entries(f)) if (input.value !== "") body[k] = input.value;
    body.set = {};
    for (const item of settings.value.split(/\s+/).filter(Boolean)) {
      const at = item.indexOf("=");
      if (at < 1) { say(`settings: ${item} is not KEY=VALUE`); return; }
      body.set[item.slice(0, at)] = item.slice(at + 1);
    }
    try { const j = await api("/api/train", { json: body }); say(`started ${j.run}`, "info"); } catch (e) { say(e.message); }
  } }, "Start training");
  const jobsBox = el("div", { class: "jobs", id: "jobs" });
  main.replaceChildren(el("h1", {}, "Train"),
    el("div", { class: "row" }, ...Object.entries(f).map(([k, input]) => el("label", {}, k.replace("_", " "), input))),
    el("div", { class: "row" }, el("label", {}, "settings (model fields, train.FIELD)", settings), start),
    el("p", { class: "muted" }, "Data: digits, mnist:DIR, folder:DIR (see the README). Give minutes or steps; a run stopped here saves a checkpoint and can be resumed."),
    el("h2", {}, "Jobs"), jobsBox);
  every(500, async () => {
    const [jobs, runs] = await Promise.all([api("/api/jobs"), api("/api/runs")]);
    const byName = Object.fromEntries(runs.runs.map((r) => [r.name, r]));
    jobsBox.replaceChildren(...jobs.jobs.map((j) => {
      const r = byName[j.run];
      const b = jobBlock(j);
      b.prepend(el("div", {}, el("a", { href: runHash("run", j.run) }, j.run)));
      if (r && j.kind !== "evaluate") b.append(progressBlock(r.progress, j.state));
      if (r && (j.state === "stopped" || j.state === "failed") && r.status !== "finished") {
        b.append(el("button", { class: "resume", onclick: async () => {
          try { await api("/api/resume", { json: { run: j.run } }); } catch (e) { say(e.message); }
        } }, "Resume"));
      }
      return b;
    }));
    if (!jobs.jobs.length) jobsBox.replaceChildren(el("p", { class: "muted" }, "No jobs started from this page yet."));
  });
}

// ---------------------------------------------------------------- Compare
async function pageCompare(params) {
  const runs = (await api("/api/runs")).runs;
  const chosen = new Set((params.get("runs") || "").split(",").filter(Boolean));
  const list = el("div", { class: "row" }, ...runs.map((r) => {
    const box = el("input", { type: "checkbox", value: r.name, checked: chosen.has(r.name), onchange: (e) => {
      if (e.target.checked) chosen.add(r.name); else chosen.delete(r.name);
      location.hash = `#/compare?runs=${[...chosen].map(encodeURIComponent).join(",")}`;
    } });
    return el("label", { style: "flex-direction:row;gap:4px" }, box, r.name);
  }));
  const table = el("div"), grids = el("div", { class: "compare" });
  const boards = (await api("/api/leaderboards")).leaderboards;
  const boardList = boards.map((b) => {
    const body = el("div", { class: "report" });
    body.innerHTML = b.report_html || "<p>No report.</p>";
    return el("details", { class: "leaderboard", "data-board": b.name },
      el("summary", {}, `${b.name}: ${b.data} · ${b.models.length} models (${b.models.join(", ")})`), body);
  });
  main.replaceChildren(el("h1", {}, "Compare"),
    ...(boards.length ? [el("div", {}, el("h2", {}, "Leaderboards (genvision compare)"), ...boardList)] : []),
    el("h2", {}, "Runs side by side"), el("p", { class: "muted" }, "Tick two or more runs."), list, table, grids);
  const picked = runs.filter((r) => chosen.has(r.name));
  if (!picked.length) return;
  const details = await Promise.all(picked.map((r) => api(`/api/run?run=${encodeURIComponent(r.name)}`)));
  const keys = [...new Set(details.flatMap((d) => Object.keys(d.metrics)))].sort();
  const rows = [["model", (d) => d.model], ["data", (d) => d.data], ["status", (d) => d.status],
    ["steps", (d) => d.progress && d.progress.step], ["training s", (d) => d.progress && fmt(d.progress.elapsed)],
    ...keys.map((k) => [k, (d) => fmt(d.metrics[k])])];
  table.replaceChildren(el("table", { id: "compare-table" },
    el("thead", {}, el("tr", {}, el("th", {}, ""), ...details.map((d) => el("th", {}, d.name)))),
    el("tbody", {}, ...rows.map(([label, get]) => el("tr", {}, el("th", {}, label), ...details.map((d) => el("td", {}, get(d) ?? "")))))));
  grids.replaceChildren(...details.map((d) => el("div", { class: "card" }, el("h3", {}, d.name),
    d.grid ? el("img", { class: "grid", src: fileUrl(d.name, d.grid, Math.round(d.modified)), alt: "samples" }) : el("p", {}, "no grid"))));
}

// ---------------------------------------------------------------- Quiz
async function pageQuiz(name) {
  const perKind = el("input", { type: "number", id: "per-kind", value: 10, min: 1, max: 100, style: "width:70px" });
  const box = el("div", { class: "quiz" });
  main.replaceChildren(el("h1", {}, `Real or generated? · ${name}`),
    el("p", { class: "muted" }, "Half the images come from the model, half from its data's held-back test images, shuffled. " +
      "Answer each; the answers and response times are saved in the run folder and shown in its report as the human error rate."),
    el("div", { class: "row" }, el("label", {}, "images of each kind", perKind),
      el("button", { class: "primary", id: "quiz-start", onclick: start }, "Start")), box);
  async function start() {
    box.replaceChildren(el("p", { class: "muted" }, "drawing the model's images…"));
    let q;
    try { q = await api("/api/quiz", { json: { run: name, per_kind: perKind.value } }); } catch (e) { say(e.message); box.replaceChildren(); return; }
    let i = 0, shownAt = 0, wrong = 0, last = null;
    const img = el("img", { id: "quiz-image", alt: "real or generated?" });
    img.addEventListener("load", () => { shownAt = performance.now(); });
    const count = el("div", { class: "muted", id: "quiz-count" });
    const answer = async (a) => {
      const ms = performance.now() - shownAt;
      try {
        last = await api(`/api/quiz/${q.quiz}/answer`, { json: { i, answer: a, ms } });
        if (!last.correct) wrong += 1;
      } catch (e) { say(e.message); return; }
      i += 1;
      show();
    };
    const buttons = el("div", { class: "row" }, el("button", { id: "says-real", onclick: () => answer("real") }, "Real (r)"),
      el("button", { id: "says-generated", onclick: () => answer("generated") }, "Generated (g)"));
    document.onkeydown = (e) => { if (location.hash.startsWith("#/quiz") && (e.key === "r" || e.key === "g")) answer(e.key === "r" ? "real" : "generated"); };
    box.replaceChildren(count, img, buttons);
    function show() {
      if (i >= q.count) {
        const s = last.summary;
        box.replaceChildren(el("p", { id: "quiz-done" }, `Done: ${wrong} of ${q.count} wrong this time. All judgements of this run: human error rate ` +
          `${fmt(s.error_rate)} (95% CI ${fmt(s.ci95[0])}–${fmt(s.ci95[1])}, ${s.judgements} judgements).`),
          el("a", { href: runHash("run", name) }, "back to the run"));
        document.onkeydown = null;
        return;
      }
      count.textContent = `${i + 1} / ${q.count}`;
      img.src = `/api/quiz/${q.quiz}/${i}.png`;
    }
    show();
  }
}

// ---------------------------------------------------------------- router
async function route() {
  generation += 1;
  timers.forEach(clearInterval);
  timers = [];
  document.onkeydown = null;
  say("");
  const hash = location.hash || "#/runs";
  const [path, query] = hash.slice(2).split("?");
  const params = new URLSearchParams(query || "");
  const [page, ...rest] = path.split("/");
  const name = decodeURIComponent(rest.join("/"));
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  try {
    if (page === "run") await pageRun(name);
    else if (page === "sample") await pageSample(name);
    else if (page === "apps") await pageApps(params);
    else if (page === "train") await pageTrain();
    else if (page === "compare") await pageCompare(params);
    else if (page === "quiz") await pageQuiz(name);
    else await pageRuns();
  } catch (e) { say(e.message); }
}

window.addEventListener("hashchange", route);
route();
