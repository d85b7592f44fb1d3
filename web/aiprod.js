// AIPROD v2 in the ComfyUI editor: a live loss curve on the LoRA trainer and Hybridize, an inline player on VAE Decode.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const TRAINERS = ["AIPRODLoraTrainer", "AIPRODHybridize"]; // nodes that send aiprod.train events
const DECODE = "AIPRODVAEDecode";

function drawLoss(canvas, points, total) {
  const ctx = canvas.getContext("2d");
  const w = (canvas.width = canvas.clientWidth || 300);
  const h = (canvas.height = canvas.clientHeight || 140);
  ctx.fillStyle = "#1b1b1b";
  ctx.fillRect(0, 0, w, h);
  canvas.dataset.points = String(points.length);
  if (points.length < 2) {
    ctx.fillStyle = "#888";
    ctx.font = "12px sans-serif";
    ctx.fillText(points.length ? "training..." : "loss curve appears while training", 8, h / 2);
    return;
  }
  const losses = points.map((p) => p.loss);
  const lo = Math.min(...losses);
  const hi = Math.max(...losses);
  const last = Math.max(total || 0, points[points.length - 1].step);
  const x = (s) => 6 + ((w - 12) * (s - 1)) / Math.max(1, last - 1);
  const y = (v) => h - 16 - ((h - 28) * (v - lo)) / Math.max(1e-12, hi - lo);
  ctx.strokeStyle = "#4aa3ff";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo(x(p.step), y(p.loss)) : ctx.moveTo(x(p.step), y(p.loss))));
  ctx.stroke();
  const p = points[points.length - 1];
  ctx.fillStyle = "#ddd";
  ctx.font = "11px sans-serif";
  ctx.fillText(`step ${p.step}/${total}  loss ${p.loss.toFixed(4)}  ${p.phase ?? ""}`, 6, h - 3);
}

function addLossCurve(node) {
  const canvas = document.createElement("canvas");
  canvas.className = "aiprod-loss-curve";
  canvas.style.width = "100%";
  canvas.style.height = "140px";
  node.aiprodLoss = { canvas, points: [], total: 0 };
  node.addDOMWidget("aiprod_loss_curve", "aiprod_loss_curve", canvas, { serialize: false, getMinHeight: () => 150 });
  drawLoss(canvas, [], 0);
}

function addPlayer(node) {
  const video = document.createElement("video");
  video.className = "aiprod-player";
  Object.assign(video, { controls: true, loop: true, muted: true, autoplay: true, playsInline: true });
  video.style.width = "100%";
  video.style.maxHeight = "360px";
  video.style.background = "#000";
  node.aiprodPlayer = video;
  node.addDOMWidget("aiprod_player", "aiprod_player", video, { serialize: false, getMinHeight: () => 200 });
}

// ComfyUI's own handlers of a node type run first; ours are chained after them, on the node itself
function afterCreated(nodeType, add) {
  const created = nodeType.prototype.onNodeCreated;
  nodeType.prototype.onNodeCreated = function () {
    const r = created?.apply(this, arguments);
    add(this);
    return r;
  };
}

function afterExecuted(nodeType, show) {
  const executed = nodeType.prototype.onExecuted;
  nodeType.prototype.onExecuted = function (output) {
    executed?.apply(this, arguments);
    show(this, output);
  };
}

function showNote(node, output) {
  const text = (output?.text ?? []).join(" ");
  if (!text && !node.aiprodNote) return;
  if (!node.aiprodNote) {
    node.aiprodNote = document.createElement("div");
    node.aiprodNote.className = "aiprod-note";
    Object.assign(node.aiprodNote.style, { color: "#aaa", font: "12px sans-serif", padding: "2px 6px" });
    node.addDOMWidget("aiprod_note", "aiprod_note", node.aiprodNote, { serialize: false, getMinHeight: () => 20 });
  }
  // a run with nothing to say (an empty prompt has no script) clears what an earlier run showed
  node.aiprodNote.textContent = text;
  node.aiprodNote.style.display = text ? "" : "none";
}

function playClip(node, output) {
  const clip = output?.aiprod_video?.[0];
  if (!clip || !node.aiprodPlayer) return;
  const query = new URLSearchParams({ filename: clip.filename, subfolder: clip.subfolder, type: clip.type });
  node.aiprodPlayer.src = api.apiURL(`/view?${query}`);
}

app.registerExtension({
  name: "aiprod.v2",
  setup() {
    api.addEventListener("aiprod.train", ({ detail }) => {
      const node = app.graph?.getNodeById(Number(detail.node));
      if (!node?.aiprodLoss) return;
      const state = node.aiprodLoss;
      if (detail.step <= (state.points.at(-1)?.step ?? 0)) state.points = state.points.filter((p) => p.step < detail.step);
      state.points.push({ step: detail.step, loss: detail.loss, phase: detail.phase });
      state.total = detail.total;
      drawLoss(state.canvas, state.points, state.total);
    });
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    // a node's text output (the detected script, where a LoRA was saved) shown under its widgets
    if (nodeData.name.startsWith("AIPROD")) afterExecuted(nodeType, showNote);
    if (TRAINERS.includes(nodeData.name)) afterCreated(nodeType, addLossCurve);
    if (nodeData.name === DECODE) {
      afterCreated(nodeType, addPlayer);
      afterExecuted(nodeType, playClip);
    }
  },
});
