// pixtrans serve: the page. No dependencies, no build step. Three views over the REST API:
//   draw        pix2pix: paint labels (or edges) on a canvas, translated live
//   directions  CycleGAN: upload or pick an example, choose A->B or B->A
//   labels      pix2pixHD: edit class and instance maps, pick a style per object
"use strict";

const $ = (id) => document.getElementById(id);
let MODELS = [];
let current = null; // the model description from GET /models

function status(text, error = false) {
  const el = $("status");
  el.textContent = text || "";
  el.className = error ? "error" : "";
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (e) {
    return `${resp.status} ${resp.statusText}`;
  }
}

// One request at a time per view; an edit made while one runs is sent when it returns.
function makeRequester(send) {
  let busy = false, again = false;
  return async function run() {
    if (busy) { again = true; return; }
    busy = true;
    try { await send(); } finally {
      busy = false;
      if (again) { again = false; run(); }
    }
  };
}

async function postTranslate(form, img, timeEl, dlLink) {
  const t0 = performance.now();
  const resp = await fetch(`/translate/${encodeURIComponent(current.name)}`, { method: "POST", body: form });
  if (!resp.ok) { status(await errorText(resp), true); return false; }
  const blob = await resp.blob();
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  const url = URL.createObjectURL(blob);
  img.dataset.url = url;
  img.src = url;
  img.dataset.version = String(Number(img.dataset.version || 0) + 1);
  if (dlLink) dlLink.href = url;
  const ms = resp.headers.get("X-Pixtrans-Ms");
  if (timeEl) timeEl.textContent = `(${Math.round(performance.now() - t0)} ms, model ${ms ? Math.round(ms) : "?"} ms)`;
  status("");
  return true;
}

function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

function canvasBlob(canvas) {
  return new Promise((res) => canvas.toBlob(res, "image/png"));
}

function exampleUrl(i, file) {
  return `/models/${encodeURIComponent(current.name)}/examples/${i}/${file}`;
}

function loadImage(src) {
  return new Promise((res, rej) => {
    const im = new Image();
    im.onload = () => res(im);
    im.onerror = () => rej(new Error("the browser cannot show this image; try a PNG"));
    im.src = src;
  });
}

// ---------------------------------------------------------------------------------------------
// .npy read/write (little-endian uint8 / uint16 / int32 HxW): how id maps travel

function parseNpy(buf) {
  const bytes = new Uint8Array(buf);
  if (bytes[0] !== 0x93 || String.fromCharCode(...bytes.slice(1, 6)) !== "NUMPY") throw new Error("not a .npy file");
  const major = bytes[6];
  const dv = new DataView(buf);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.slice(start, start + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").filter((s) => s.trim()).map(Number);
  const off = start + hlen;
  const n = shape[0] * shape[1];
  let data;
  if (descr === "|u1") data = new Uint8Array(buf.slice(off, off + n));
  else if (descr === "<u2") data = new Uint16Array(buf.slice(off, off + 2 * n));
  else if (descr === "<i4") data = new Int32Array(buf.slice(off, off + 4 * n));
  else if (descr === "<i8") data = Int32Array.from(new BigInt64Array(buf.slice(off, off + 8 * n)), Number);
  else throw new Error(`unsupported .npy dtype ${descr}`);
  return { h: shape[0], w: shape[1], data };
}

function npyBlob(arr, h, w) {
  const descr = arr instanceof Uint8Array ? "|u1" : arr instanceof Uint16Array ? "<u2" : "<i4";
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${h}, ${w}), }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const pre = new Uint8Array(10);
  pre.set([0x93, 78, 85, 77, 80, 89, 1, 0]);
  new DataView(pre.buffer).setUint16(8, header.length, true);
  return new Blob([pre, new TextEncoder().encode(header), arr], { type: "application/octet-stream" });
}

// ---------------------------------------------------------------------------------------------
// Pixel painting shared by the two editors: hard-edged discs, no anti-aliasing (every pixel is
// exactly a palette colour / a class id)

function discOffsets(r) {
  const out = [];
  const rr = r - 0.5;
  for (let dy = -r + 1; dy < r; dy++)
    for (let dx = -r + 1; dx < r; dx++)
      if (dx * dx + dy * dy <= rr * rr || r === 1) out.push([dx, dy]);
  return out;
}

function strokePoints(x0, y0, x1, y1) {
  const n = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
  const pts = [];
  for (let i = 0; i <= n; i++) pts.push([Math.round(x0 + ((x1 - x0) * i) / n), Math.round(y0 + ((y1 - y0) * i) / n)]);
  return pts;
}

function canvasXY(canvas, ev) {
  const r = canvas.getBoundingClientRect();
  // the canvas is shown with object-fit-like scaling: map the pointer to its pixel grid
  const scale = Math.min(r.width / canvas.width, r.height / canvas.height);
  const ox = (r.width - canvas.width * scale) / 2, oy = (r.height - canvas.height * scale) / 2;
  return [Math.floor((ev.clientX - r.left - ox) / scale), Math.floor((ev.clientY - r.top - oy) / scale)];
}

function fitCanvas(canvas, maxW, maxH) {
  const s = Math.min(maxW / canvas.width, maxH / canvas.height);
  canvas.style.width = `${Math.round(canvas.width * s)}px`;
  canvas.style.height = `${Math.round(canvas.height * s)}px`;
  return s;
}

// flood fill over a flat array of values (4-connected, exact match); `get(i)`, `set(i)`
function floodFill(w, h, x, y, same, set) {
  const stack = [y * w + x];
  const seen = new Uint8Array(w * h);
  while (stack.length) {
    const i = stack.pop();
    if (seen[i] || !same(i)) continue;
    seen[i] = 1;
    set(i);
    const px = i % w, py = (i - px) / w;
    if (px > 0) stack.push(i - 1);
    if (px < w - 1) stack.push(i + 1);
    if (py > 0) stack.push(i - w);
    if (py < h - 1) stack.push(i + w);
  }
}

class History {
  constructor(limit = 60) { this.undo = []; this.redo = []; this.limit = limit; }
  push(state) { this.undo.push(state); if (this.undo.length > this.limit) this.undo.shift(); this.redo = []; }
  back(now) { if (!this.undo.length) return null; this.redo.push(now); return this.undo.pop(); }
  forward(now) { if (!this.redo.length) return null; this.undo.push(now); return this.redo.pop(); }
}

// ---------------------------------------------------------------------------------------------
// pix2pix: the drawing page

const draw = {
  canvas: null, ctx: null, img: null, tool: "brush", colour: [0, 0, 0], background: [255, 255, 255],
  history: new History(), drawing: false, last: null, start: null, snapshot: null,
};

function rgbOf(c) { return `rgb(${c[0]},${c[1]},${c[2]})`; }

function setupDraw() {
  const m = current;
  const [h, w] = m.size;
  const c = $("draw-canvas");
  c.width = w; c.height = h;
  fitCanvas(c, 384, 384);
  const out = $("draw-out");
  out.style.width = c.style.width; out.style.height = c.style.height;
  out.removeAttribute("src");
  draw.canvas = c;
  draw.ctx = c.getContext("2d", { willReadFrequently: true });
  draw.history = new History();
  const pal = $("draw-palette");
  pal.innerHTML = "";
  const kind = m.palette.kind;
  if (kind === "labels") {
    const classes = m.palette.classes;
    draw.background = classes[0].color;
    classes.forEach((cl, i) => {
      const b = document.createElement("button");
      b.className = "swatch colour" + (i === 1 ? " active" : "");
      b.innerHTML = `<i style="background:${rgbOf(cl.color)}"></i>${cl.name}`;
      b.dataset.index = i;
      b.onclick = () => { pickColour(cl.color); pal.querySelectorAll(".colour").forEach((x) => x.classList.remove("active")); b.classList.add("active"); };
      pal.appendChild(b);
    });
    draw.colour = classes[Math.min(1, classes.length - 1)].color;
  } else {
    draw.background = [255, 255, 255];
    draw.colour = [0, 0, 0];
    const note = document.createElement("span");
    note.textContent = kind === "edges" ? "pen (black on white)" : "colour";
    pal.appendChild(note);
    const pick = document.createElement("input");
    pick.type = "color"; pick.value = "#000000"; pick.id = "draw-colour";
    pick.oninput = () => pickColour([1, 3, 5].map((k) => parseInt(pick.value.slice(k, k + 2), 16)));
    pal.appendChild(pick);
  }
  $("draw-size").value = kind === "edges" ? 1 : Math.max(1, Math.round(w / 24));
  $("draw-size-val").textContent = $("draw-size").value;
  clearCanvas(false);
  renderExamples("draw-examples", m.examples, "input.png", loadDrawExample);
  if (m.examples.length) loadDrawExample(0); else liveTranslate();
}

function pickColour(c) {
  draw.colour = c;
  if (draw.tool === "eraser") selectTool("brush");
}

function clearCanvas(record = true) {
  if (record) saveState();
  const { ctx, canvas } = draw;
  ctx.fillStyle = rgbOf(draw.background);
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  changed();
}

function saveState() { draw.history.push(draw.ctx.getImageData(0, 0, draw.canvas.width, draw.canvas.height)); }

function stamp(data, w, h, x, y, r, c) {
  for (const [dx, dy] of discOffsets(r)) {
    const px = x + dx, py = y + dy;
    if (px < 0 || py < 0 || px >= w || py >= h) continue;
    const i = (py * w + px) * 4;
    data[i] = c[0]; data[i + 1] = c[1]; data[i + 2] = c[2]; data[i + 3] = 255;
  }
}

function paintSegment(x0, y0, x1, y1) {
  const { ctx, canvas } = draw;
  const w = canvas.width, h = canvas.height;
  const r = Number($("draw-size").value);
  const pad = r + 1;
  const bx = Math.max(0, Math.min(x0, x1) - pad), by = Math.max(0, Math.min(y0, y1) - pad);
  const bw = Math.min(w, Math.max(x0, x1) + pad + 1) - bx, bh = Math.min(h, Math.max(y0, y1) + pad + 1) - by;
  if (bw <= 0 || bh <= 0) return;
  const img = ctx.getImageData(bx, by, bw, bh);
  const c = draw.tool === "eraser" ? draw.background : draw.colour;
  for (const [x, y] of strokePoints(x0, y0, x1, y1)) stamp(img.data, bw, bh, x - bx, y - by, r, c);
  ctx.putImageData(img, bx, by);
}

function fillAt(x, y) {
  const { ctx, canvas } = draw;
  const w = canvas.width, h = canvas.height;
  const img = ctx.getImageData(0, 0, w, h);
  const d = img.data;
  const i0 = (y * w + x) * 4;
  const target = [d[i0], d[i0 + 1], d[i0 + 2]];
  const c = draw.colour;
  if (target[0] === c[0] && target[1] === c[1] && target[2] === c[2]) return;
  floodFill(w, h, x, y,
    (i) => d[4 * i] === target[0] && d[4 * i + 1] === target[1] && d[4 * i + 2] === target[2],
    (i) => { d[4 * i] = c[0]; d[4 * i + 1] = c[1]; d[4 * i + 2] = c[2]; d[4 * i + 3] = 255; });
  ctx.putImageData(img, 0, 0);
}

function rectTo(x, y) {
  const { ctx } = draw;
  ctx.putImageData(draw.snapshot, 0, 0);
  const [x0, y0] = draw.start;
  ctx.fillStyle = rgbOf(draw.colour);
  ctx.fillRect(Math.min(x0, x), Math.min(y0, y), Math.abs(x - x0) + 1, Math.abs(y - y0) + 1);
}

function selectTool(t) {
  draw.tool = t;
  document.querySelectorAll("#page-draw .tool").forEach((b) => b.classList.toggle("active", b.dataset.tool === t));
}

function changed() {
  $("draw-dl-in").href = draw.canvas.toDataURL("image/png");
  if ($("draw-live").checked) liveTranslate();
}

const sendDraw = makeRequester(async () => {
  const form = new FormData();
  form.append("image", await canvasBlob(draw.canvas), "drawing.png");
  form.append("mode", $("draw-mode").value);
  form.append("seed", $("draw-seed").value || "0");
  await postTranslate(form, $("draw-out"), $("draw-time"), $("draw-dl-out"));
});
const liveTranslate = debounce(sendDraw, 200);

async function loadDrawExample(i) {
  try {
    const im = await loadImage(exampleUrl(i, "input.png"));
    putImage(im);
  } catch (e) { status(e.message, true); }
}

function putImage(im) {
  saveState();
  const { ctx, canvas } = draw;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = rgbOf(draw.background);
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(im, 0, 0, canvas.width, canvas.height);
  changed();
}

function bindDraw() {
  const c = $("draw-canvas");
  c.addEventListener("pointerdown", (ev) => {
    if (current?.page !== "draw") return;
    c.setPointerCapture(ev.pointerId);
    const [x, y] = canvasXY(c, ev);
    saveState();
    if (draw.tool === "fill") { fillAt(x, y); changed(); return; }
    draw.drawing = true;
    draw.last = [x, y];
    if (draw.tool === "rect") {
      draw.start = [x, y];
      draw.snapshot = draw.ctx.getImageData(0, 0, c.width, c.height);
      rectTo(x, y);
    } else paintSegment(x, y, x, y);
  });
  c.addEventListener("pointermove", (ev) => {
    if (!draw.drawing) return;
    const [x, y] = canvasXY(c, ev);
    if (draw.tool === "rect") rectTo(x, y);
    else paintSegment(draw.last[0], draw.last[1], x, y);
    draw.last = [x, y];
    if ($("draw-live").checked) liveTranslate();
  });
  const end = () => { if (draw.drawing) { draw.drawing = false; changed(); } };
  c.addEventListener("pointerup", end);
  c.addEventListener("pointercancel", end);
  document.querySelectorAll("#page-draw .tool").forEach((b) => (b.onclick = () => selectTool(b.dataset.tool)));
  $("draw-size").oninput = () => ($("draw-size-val").textContent = $("draw-size").value);
  $("draw-undo").onclick = () => { const s = draw.history.back(draw.ctx.getImageData(0, 0, c.width, c.height)); if (s) { draw.ctx.putImageData(s, 0, 0); changed(); } };
  $("draw-redo").onclick = () => { const s = draw.history.forward(draw.ctx.getImageData(0, 0, c.width, c.height)); if (s) { draw.ctx.putImageData(s, 0, 0); changed(); } };
  $("draw-clear").onclick = () => clearCanvas();
  $("draw-go").onclick = () => sendDraw();
  $("draw-mode").onchange = () => sendDraw();
  $("draw-seed").onchange = () => sendDraw();
  $("draw-upload").onchange = async (ev) => {
    const f = ev.target.files[0];
    if (!f) return;
    ev.target.value = "";
    try { putImage(await loadImage(URL.createObjectURL(f))); } catch (e) { status(`${f.name}: ${e.message}`, true); }
  };
  document.addEventListener("keydown", (ev) => {
    if (current?.page !== "draw" || ev.target.tagName === "INPUT") return;
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") $("draw-undo").click();
    else if ((ev.ctrlKey || ev.metaKey) && ev.key === "y") $("draw-redo").click();
    else if (!ev.ctrlKey && !ev.metaKey) {
      const t = { b: "brush", e: "eraser", f: "fill", r: "rect" }[ev.key];
      if (t) selectTool(t);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// CycleGAN: one image, a direction

const dir = { blob: null };

function setupDirections() {
  const m = current;
  const sel = $("dir-direction");
  sel.innerHTML = "";
  for (const d of m.directions) {
    const o = document.createElement("option");
    o.value = d.id; o.textContent = `${d.label} (${d.id})`;
    sel.appendChild(o);
  }
  $("dir-out").removeAttribute("src");
  dir.blob = null;
  renderExamples("dir-examples", m.examples, "input.png", (i) => loadDirExample(i, "input.png"), "input_b.png", (i) => loadDirExample(i, "input_b.png"));
  if (m.examples.length) loadDirExample(0, "input.png");
}

async function loadDirExample(i, file) {
  const resp = await fetch(exampleUrl(i, file));
  if (!resp.ok) { status(await errorText(resp), true); return; }
  // an example from domain B is translated B -> A
  const want = file === "input_b.png" ? 1 : 0;
  if (current.directions[want]) $("dir-direction").value = current.directions[want].id;
  setDirInput(await resp.blob());
}

function setDirInput(blob) {
  dir.blob = blob;
  $("dir-in").src = URL.createObjectURL(blob);
  sendDir();
}

const sendDir = makeRequester(async () => {
  if (!dir.blob) return;
  const form = new FormData();
  form.append("image", dir.blob, "input.png");
  form.append("direction", $("dir-direction").value);
  form.append("mode", "eval");
  await postTranslate(form, $("dir-out"), $("dir-time"), $("dir-dl-out"));
});

function bindDirections() {
  $("dir-direction").onchange = () => sendDir();
  $("dir-go").onclick = () => sendDir();
  $("dir-upload").onchange = (ev) => {
    const f = ev.target.files[0];
    if (f) setDirInput(f);
    ev.target.value = "";
  };
}

// ---------------------------------------------------------------------------------------------
// pix2pixHD: the label and object editor

const hd = {
  h: 0, w: 0, label: null, inst: null, cls: 0, tool: "paint", selected: null, styles: {}, seed: 0,
  photo: null, history: new History(30), drawing: false, last: null, objectId: null, classes: [],
};

function hdClass(id) { return hd.classes[id] || { id, name: `class ${id}`, color: [128, 128, 128], thing: false }; }
function instClass(id) { return id >= 1000 ? Math.floor(id / 1000) : id; }

function setupLabels() {
  const m = current;
  hd.classes = [];
  for (const c of m.palette.classes || []) hd.classes[c.id] = c;
  const list = $("hd-classes");
  list.innerHTML = "";
  for (const c of m.palette.classes || []) {
    const b = document.createElement("button");
    b.className = "swatch";
    b.dataset.cls = c.id;
    b.innerHTML = `<i style="background:${rgbOf(c.color)}"></i>${c.id} ${c.name}${c.thing ? " •" : ""}`;
    b.title = c.thing ? "objects of this class are numbered (instances)" : "";
    b.onclick = () => pickClass(c.id);
    list.appendChild(b);
  }
  const sizes = $("hd-new-size");
  sizes.innerHTML = "";
  const opts = [m.size, [256, 512], [512, 1024]].filter((s, i, a) => a.findIndex((t) => t[0] === s[0] && t[1] === s[1]) === i);
  for (const [h, w] of opts) { const o = document.createElement("option"); o.value = `${h}x${w}`; o.textContent = `${w}×${h}`; sizes.appendChild(o); }
  $("hd-photo-label").hidden = !m.encoder;
  $("hd-shuffle-all").disabled = !m.encoder;
  $("hd-out").removeAttribute("src");
  renderExamples("hd-examples", m.examples, m.examples.length && m.examples[0].files.includes("photo.png") ? "photo.png" : null, loadHdExample);
  pickClass((m.palette.classes || []).find((c) => c.name === "road")?.id ?? 0);
  if (m.examples.length) loadHdExample(0);
  else newMap(m.size[0], m.size[1]);
}

function pickClass(id) {
  hd.cls = id;
  hd.objectId = null;
  document.querySelectorAll("#hd-classes button").forEach((b) => b.classList.toggle("active", Number(b.dataset.cls) === id));
}

function newMap(h, w) {
  hd.h = h; hd.w = w;
  const sky = hd.classes.findIndex((c) => c && c.name === "sky");
  const road = hd.classes.findIndex((c) => c && c.name === "road");
  hd.label = new Uint8Array(h * w);
  hd.inst = new Int32Array(h * w);
  for (let y = 0; y < h; y++) {
    const v = sky >= 0 && road >= 0 ? (y < h / 2 ? sky : road) : 0;
    hd.label.fill(v, y * w, (y + 1) * w);
    hd.inst.fill(v, y * w, (y + 1) * w);
  }
  hd.styles = {}; hd.selected = null; hd.photo = null; hd.history = new History(30);
  resetHdCanvas();
  hdChanged();
}

function resetHdCanvas() {
  const c = $("hd-canvas");
  c.width = hd.w; c.height = hd.h;
  fitCanvas(c, 400, 330);
  const out = $("hd-out");
  out.style.width = c.style.width; out.style.height = c.style.height;
  hd.ctx = c.getContext("2d");
  renderHd();
  showStyles();
}

async function loadHdExample(i) {
  try {
    const [lab, ins] = await Promise.all(["label.npy", "instance.npy"].map(async (f) => {
      if (!current.examples[i].files.includes(f)) return null;
      const r = await fetch(exampleUrl(i, f));
      if (!r.ok) throw new Error(await errorText(r));
      return parseNpy(await r.arrayBuffer());
    }));
    setMaps(lab, ins);
  } catch (e) { status(e.message, true); }
}

function setMaps(lab, ins) {
  hd.h = lab.h; hd.w = lab.w;
  hd.label = Uint8Array.from(lab.data);
  hd.inst = ins ? Int32Array.from(ins.data) : Int32Array.from(lab.data);
  hd.styles = {}; hd.selected = null; hd.photo = null; hd.history = new History(30);
  $("hd-photo-clear").hidden = true;
  resetHdCanvas();
  hdChanged();
}

// colour per class; objects outlined, the selected one highlighted
function renderHd() {
  const { w, h, label, inst } = hd;
  const img = hd.ctx.createImageData(w, h);
  const d = img.data;
  const lut = [];
  for (let k = 0; k < 256; k++) lut[k] = hdClass(k).color;
  for (let i = 0; i < w * h; i++) {
    const c = lut[label[i]];
    let r = c[0], g = c[1], b = c[2];
    const id = inst[i];
    const x = i % w;
    const edge = (x > 0 && inst[i - 1] !== id) || (x < w - 1 && inst[i + 1] !== id) || (i >= w && inst[i - w] !== id) || (i < w * (h - 1) && inst[i + w] !== id);
    if (edge && id >= 1000) { r = 255; g = 255; b = 255; }
    if (hd.selected !== null && id === hd.selected) { r = (r + 255 * 2) / 3; g = (g + 230 * 2) / 3; b = b / 3; }
    d[4 * i] = r; d[4 * i + 1] = g; d[4 * i + 2] = b; d[4 * i + 3] = 255;
  }
  hd.ctx.putImageData(img, 0, 0);
}

function hdSave() { hd.history.push({ label: hd.label.slice(), inst: hd.inst.slice() }); }

function hdRestore(s) { if (!s) return; hd.label = s.label; hd.inst = s.inst; renderHd(); hdChanged(); }

function nextObjectId(cls) {
  let top = cls * 1000 - 1;
  for (let i = 0; i < hd.inst.length; i++) if (instClass(hd.inst[i]) === cls && hd.inst[i] >= 1000 && hd.inst[i] > top) top = hd.inst[i];
  return top + 1;
}

function hdPaint(x0, y0, x1, y1) {
  const { w, h } = hd;
  const r = Number($("hd-size").value);
  const cls = hd.cls;
  const id = hd.tool === "object" ? hd.objectId : cls;
  const offs = discOffsets(r);
  for (const [x, y] of strokePoints(x0, y0, x1, y1))
    for (const [dx, dy] of offs) {
      const px = x + dx, py = y + dy;
      if (px < 0 || py < 0 || px >= w || py >= h) continue;
      hd.label[py * w + px] = cls;
      hd.inst[py * w + px] = id;
    }
}

function objectAt(x, y) { return hd.inst[y * hd.w + x]; }

function hdClick(x, y) {
  const id = objectAt(x, y);
  if (hd.tool === "select") { hd.selected = id; renderHd(); showStyles(); return false; }
  if (hd.tool === "erase") {
    if (id < 1000) { status("that is not an object (no instance id); click inside an outlined object", true); return false; }
    for (let i = 0; i < hd.inst.length; i++) if (hd.inst[i] === id) { hd.label[i] = hd.cls; hd.inst[i] = hd.cls; }
    delete hd.styles[id];
    if (hd.selected === id) hd.selected = null;
    showStyles();
    return true;
  }
  if (hd.tool === "fill") {
    const i0 = y * hd.w + x;
    const lab = hd.label[i0], ins = hd.inst[i0];
    if (lab === hd.cls && ins === hd.cls) return false;
    floodFill(hd.w, hd.h, x, y, (i) => hd.label[i] === lab && hd.inst[i] === ins, (i) => { hd.label[i] = hd.cls; hd.inst[i] = hd.cls; });
    return true;
  }
  return false;
}

function showStyles() {
  const box = $("hd-clusters");
  box.innerHTML = "";
  const id = hd.selected;
  const one = $("hd-shuffle-one");
  if (id === null) { $("hd-selected").innerHTML = "click an object with <b>select</b>"; one.disabled = true; return; }
  const cls = instClass(id);
  const n = (current.clusters || {})[String(cls)] || 0;
  $("hd-selected").textContent = `${id >= 1000 ? "object" : "region"} ${id} (${hdClass(cls).name}): ${n} styles`;
  one.disabled = n === 0;
  for (let k = 0; k < n; k++) {
    const b = document.createElement("button");
    b.textContent = String(k);
    b.className = "cluster" + (hd.styles[id] === k ? " active" : "");
    b.dataset.cluster = k;
    b.onclick = () => { hd.styles[id] = k; hd.photo = null; $("hd-photo-clear").hidden = true; showStyles(); hdChanged(); };
    box.appendChild(b);
  }
  if (!current.encoder) $("hd-style-note").textContent = "this model has no feature encoder: no styles to choose";
  else if (!n) $("hd-style-note").textContent = "no stored styles for this class (run `pixtrans features`)";
  else $("hd-style-note").textContent = hd.photo ? "styles come from the photo" : "";
}

const sendHd = makeRequester(async () => {
  const form = new FormData();
  form.append("label", npyBlob(hd.label, hd.h, hd.w), "label.npy");
  if (current.instance) form.append("instance", npyBlob(Uint16Array.from(hd.inst), hd.h, hd.w), "instance.npy");
  form.append("seed", String(hd.seed));
  if (hd.photo) form.append("photo", hd.photo, "photo.png");
  else if (current.encoder && Object.keys(hd.styles).length) {
    // only objects still on the map (an erased one keeps no style)
    const present = new Set(hd.inst);
    const styles = Object.fromEntries(Object.entries(hd.styles).filter(([k]) => present.has(Number(k))));
    form.append("styles", JSON.stringify(styles));
  }
  await postTranslate(form, $("hd-out"), $("hd-time"), $("hd-dl-out"));
});

function hdChanged() { renderHd(); sendHd(); }

function bindLabels() {
  const c = $("hd-canvas");
  c.addEventListener("pointerdown", (ev) => {
    if (current?.page !== "labels") return;
    const [x, y] = canvasXY(c, ev);
    if (x < 0 || y < 0 || x >= hd.w || y >= hd.h) return;
    if (hd.tool === "paint" || hd.tool === "object") {
      hdSave();
      if (hd.tool === "object" && hd.objectId === null) {
        if (!hdClass(hd.cls).thing) status(`'${hdClass(hd.cls).name}' has no numbered objects in this dataset; painting it as an object anyway`);
        hd.objectId = nextObjectId(hd.cls);
      }
      c.setPointerCapture(ev.pointerId);
      hd.drawing = true; hd.last = [x, y];
      hdPaint(x, y, x, y);
      renderHd();
      return;
    }
    hdSave();
    if (hdClick(x, y)) hdChanged();
  });
  c.addEventListener("pointermove", (ev) => {
    const [x, y] = canvasXY(c, ev);
    if (x >= 0 && y >= 0 && x < hd.w && y < hd.h) {
      const id = objectAt(x, y);
      $("hd-hover").textContent = `${hdClass(hd.label[y * hd.w + x]).name}${id >= 1000 ? ` #${id}` : ""}`;
    }
    if (!hd.drawing) return;
    hdPaint(hd.last[0], hd.last[1], x, y);
    hd.last = [x, y];
    renderHd();
  });
  const end = () => {
    if (!hd.drawing) return;
    hd.drawing = false;
    if (hd.tool === "object") { hd.selected = hd.objectId; showStyles(); }
    hdChanged();
  };
  c.addEventListener("pointerup", end);
  c.addEventListener("pointercancel", end);
  document.querySelectorAll(".hdtool").forEach((b) => (b.onclick = () => {
    hd.tool = b.dataset.hdtool;
    hd.objectId = null; // "new object" starts a fresh instance each time it is chosen
    document.querySelectorAll(".hdtool").forEach((x) => x.classList.toggle("active", x === b));
  }));
  $("hd-size").oninput = () => ($("hd-size-val").textContent = $("hd-size").value);
  $("hd-undo").onclick = () => hdRestore(hd.history.back({ label: hd.label.slice(), inst: hd.inst.slice() }));
  $("hd-redo").onclick = () => hdRestore(hd.history.forward({ label: hd.label.slice(), inst: hd.inst.slice() }));
  $("hd-new").onclick = () => { const [h, w] = $("hd-new-size").value.split("x").map(Number); newMap(h, w); };
  $("hd-shuffle-one").onclick = () => {
    const id = hd.selected;
    const n = (current.clusters || {})[String(instClass(id))] || 0;
    if (!n) return;
    let k = Math.floor(Math.random() * n);
    if (n > 1 && k === hd.styles[id]) k = (k + 1) % n;
    hd.styles[id] = k; hd.photo = null; showStyles(); hdChanged();
  };
  $("hd-shuffle-all").onclick = () => { hd.seed = Math.floor(Math.random() * 1e6); hd.styles = {}; hd.photo = null; showStyles(); hdChanged(); };
  $("hd-photo").onchange = (ev) => {
    const f = ev.target.files[0];
    ev.target.value = "";
    if (!f) return;
    hd.photo = f; $("hd-photo-clear").hidden = false; showStyles(); hdChanged();
  };
  $("hd-photo-clear").onclick = () => { hd.photo = null; $("hd-photo-clear").hidden = true; showStyles(); hdChanged(); };
  const readIds = async (f) => {
    const form = new FormData();
    form.append("file", f, f.name);
    const r = await fetch("/decode/ids", { method: "POST", body: form });
    if (!r.ok) throw new Error(await errorText(r));
    return parseNpy(await r.arrayBuffer());
  };
  let pendingLabel = null;
  $("hd-label-file").onchange = async (ev) => {
    const f = ev.target.files[0]; ev.target.value = "";
    if (!f) return;
    try {
      pendingLabel = await readIds(f);
      setMaps(pendingLabel, null); // objects come with the instance map, loaded next
    } catch (e) { status(e.message, true); }
  };
  $("hd-inst-file").onchange = async (ev) => {
    const f = ev.target.files[0]; ev.target.value = "";
    if (!f) return;
    try {
      const ins = await readIds(f);
      const lab = pendingLabel || { h: hd.h, w: hd.w, data: hd.label };
      if (ins.h !== lab.h || ins.w !== lab.w) throw new Error(`instance map is ${ins.w}x${ins.h} but the label map ${lab.w}x${lab.h}`);
      setMaps(lab, ins);
    } catch (e) { status(e.message, true); }
  };
}

// ---------------------------------------------------------------------------------------------

function renderExamples(id, examples, file, onPick, fileB, onPickB) {
  const box = $(id);
  box.innerHTML = "";
  for (const ex of examples) {
    if (file) {
      const im = document.createElement("img");
      im.src = exampleUrl(ex.index, file);
      im.title = `${ex.split}/${ex.name}`;
      im.className = "example";
      im.onclick = () => onPick(ex.index);
      box.appendChild(im);
    } else {
      const b = document.createElement("button");
      b.textContent = ex.name;
      b.className = "example";
      b.onclick = () => onPick(ex.index);
      box.appendChild(b);
    }
    if (fileB && ex.files.includes(fileB)) {
      const im = document.createElement("img");
      im.src = exampleUrl(ex.index, fileB);
      im.title = `${ex.split}/${ex.name} (domain B)`;
      im.className = "example example-b";
      im.onclick = () => onPickB(ex.index);
      box.appendChild(im);
    }
  }
}

function show(name) {
  current = MODELS.find((m) => m.name === name);
  if (!current) return;
  history.replaceState(null, "", `#${encodeURIComponent(name)}`);
  document.querySelectorAll(".page").forEach((p) => (p.hidden = p.id !== `page-${current.page}`));
  $("model-info").textContent = `${current.method}${current.step != null ? `, step ${current.step}` : ""} · ${current.palette.dataset || current.palette.kind}`;
  status("");
  ({ draw: setupDraw, directions: setupDirections, labels: setupLabels })[current.page]();
}

async function main() {
  bindDraw(); bindDirections(); bindLabels();
  const resp = await fetch("/models");
  if (!resp.ok) { status(await errorText(resp), true); return; }
  MODELS = (await resp.json()).models;
  const sel = $("model");
  for (const m of MODELS) {
    const o = document.createElement("option");
    o.value = m.name; o.textContent = `${m.name} (${m.method})`;
    sel.appendChild(o);
  }
  const wanted = decodeURIComponent(location.hash.slice(1));
  sel.value = MODELS.some((m) => m.name === wanted) ? wanted : MODELS[0].name;
  sel.onchange = () => show(sel.value);
  window.addEventListener("hashchange", () => {
    const name = decodeURIComponent(location.hash.slice(1));
    if (name !== current?.name && MODELS.some((m) => m.name === name)) { sel.value = name; show(name); }
  });
  show(sel.value);
}

main().catch((e) => status(String(e), true));
