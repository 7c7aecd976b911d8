// Browser client of `affect serve` (protocol affect-stream/1, docs/protocol.md): camera frames as JPEG and the
// microphone as 16-bit PCM over one WebSocket; shows the fused label, the class probabilities and a V/A trail.
// Options in the page URL: ?token=... (browsers cannot set an Authorization header), ?fps=12.
"use strict";

const params = new URLSearchParams(location.search);
const FPS = Math.min(30, Math.max(1, Number(params.get("fps")) || 12));
const FRAME_SIDE = 480; // longer side of sent frames: faces stay big enough, JPEGs stay small
const MAX_BUFFERED = 512 * 1024; // skip frames while this much is still unsent (a slow network)
const TRAIL = 90; // V/A points kept on the plot

const $ = (id) => document.getElementById(id);
let ws = null;
let t0 = 0;
let lastT = -1;
let framesSent = 0;
let fusedCount = 0;
const sentAt = new Map(); // frame t -> performance.now() when sent, for the latency shown
const trail = [];

// Stream time in seconds on this page's own clock, strictly increasing (the server requires it for frames).
function now() {
  const t = Math.max((performance.now() - t0) / 1000, lastT + 1e-3);
  lastT = t;
  return Number(t.toFixed(4));
}

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function streamUrl() {
  const token = params.get("token");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/v1/stream` + (token ? `?token=${encodeURIComponent(token)}` : "");
}

// ------------------------------------------------------------------ sending
function startFrames(video) {
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d");
  setInterval(() => {
    if (!video.videoWidth || !ws || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED) return;
    const scale = Math.min(1, FRAME_SIDE / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    const t = now();
    canvas.toBlob(async (blob) => {
      if (!blob) return;
      send({ type: "frame", t, jpeg: base64(await blob.arrayBuffer()) });
      sentAt.set(t, performance.now());
      $("frames-sent").textContent = ++framesSent;
    }, "image/jpeg", 0.8);
  }, 1000 / FPS);
}

async function startAudio(media) {
  let context;
  let source;
  try { // 16 kHz is what the speech model hears; browsers that cannot resample a microphone get their own rate
    context = new AudioContext({ sampleRate: 16000 });
    source = context.createMediaStreamSource(media);
  } catch (err) {
    context = new AudioContext();
    source = context.createMediaStreamSource(media);
  }
  await context.audioWorklet.addModule("/static/pcm-worklet.js");
  const node = new AudioWorkletNode(context, "pcm16-capture");
  let first = true;
  node.port.onmessage = (event) => {
    const seconds = event.data.byteLength / 2 / context.sampleRate;
    // Only the first chunk's t matters to the server (it counts samples after it): the chunk began `seconds` ago.
    const t = first ? Math.max(0, (performance.now() - t0) / 1000 - seconds) : (performance.now() - t0) / 1000;
    first = false;
    send({ type: "audio", t: Number(t.toFixed(4)), sample_rate: context.sampleRate, pcm16: base64(event.data) });
  };
  source.connect(node);
  node.connect(context.destination); // a node must reach the destination to be pulled; it outputs silence
  await context.resume();
}

// ------------------------------------------------------------------ showing
let classes = [];

function makeBars(names) {
  classes = names;
  $("bars").innerHTML = names.map((name) =>
    `<div class="bar"><span>${name}</span><div class="track"><div class="fill" id="bar-${name}"></div></div>` +
    `<span class="value" id="p-${name}">0.00</span></div>`).join("");
}

function drawTrail() {
  const canvas = $("va");
  const c = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  c.clearRect(0, 0, w, h);
  c.strokeStyle = "#374151";
  c.beginPath(); c.moveTo(w / 2, 0); c.lineTo(w / 2, h); c.moveTo(0, h / 2); c.lineTo(w, h / 2); c.stroke();
  c.fillStyle = "#6b7280";
  c.fillText("valence →", w - 60, h / 2 - 4);
  c.fillText("arousal ↑", w / 2 + 4, 12);
  trail.forEach(([v, a], i) => {
    c.fillStyle = `rgba(34, 197, 94, ${0.15 + 0.85 * (i + 1) / trail.length})`;
    c.beginPath();
    c.arc((v + 1) / 2 * w, (1 - a) / 2 * h, i === trail.length - 1 ? 5 : 2.5, 0, 2 * Math.PI);
    c.fill();
  });
}

function showFused(record) {
  $("fused-count").textContent = ++fusedCount;
  if (sentAt.has(record.t)) {
    $("latency").textContent = `${Math.round(performance.now() - sentAt.get(record.t))} ms`;
    sentAt.delete(record.t);
  }
  if (!record.label) {
    $("sources").textContent = record.note || "nothing to fuse";
    return;
  }
  $("label").textContent = record.label;
  $("sources").textContent = `from ${record.sources.join(" + ")} · confidence ${record.confidence.toFixed(2)}` +
    (record.note ? ` · ${record.note}` : "");
  for (const name of classes) {
    const p = record.probs[name] || 0;
    $(`bar-${name}`).style.width = `${(100 * p).toFixed(1)}%`;
    $(`p-${name}`).textContent = p.toFixed(2);
  }
  trail.push([record.valence, record.arousal]);
  if (trail.length > TRAIL) trail.shift();
  $("va-text").textContent = `valence ${record.valence.toFixed(2)} · arousal ${record.arousal.toFixed(2)}`;
  drawTrail();
}

function onRecord(event) {
  const record = JSON.parse(event.data);
  if (record.kind === "session") {
    makeBars(record.classes);
    $("status").textContent = `connected · ${record.models.face.name} + ${record.models.speech.name} · ` +
      `${record.options.rule}`;
  } else if (record.kind === "fused") {
    showFused(record);
  } else if (record.kind === "event") {
    $("event").textContent = record.message;
  } else if (record.kind === "error") {
    $("error").textContent = record.message;
  }
}

// ------------------------------------------------------------------ start
async function start() {
  $("start").disabled = true;
  try {
    const media = await navigator.mediaDevices.getUserMedia({
      video: { width: 640, height: 480 },
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const video = $("video");
    video.srcObject = media;
    await video.play();
    ws = new WebSocket(streamUrl());
    ws.onmessage = onRecord;
    ws.onclose = (event) => {
      $("status").textContent = `disconnected (${event.code}${event.reason ? ": " + event.reason : ""})`;
      $("start").disabled = false;
    };
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
    t0 = performance.now();
    startFrames(video);
    await startAudio(media);
  } catch (err) {
    $("error").textContent = `could not start: ${err.message || err}`;
    $("start").disabled = false;
  }
}

$("start").addEventListener("click", start);
drawTrail();
