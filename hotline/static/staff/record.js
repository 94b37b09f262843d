// Record a prompt in the browser: microphone (MediaRecorder), a level meter, listen back, keep or redo.
// "Keep" puts the take into the upload form's file field and submits that form: a recording and an
// uploaded file take the same path on the server (the audio pipeline, then the draft). Without
// MediaRecorder the recorder stays hidden and the upload form works alone. No CDN, no inline script.
(function () {
  "use strict";
  var box = document.getElementById("recorder");
  var form = document.getElementById("take-form");
  if (!box || !form) { return; }
  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder && window.DataTransfer)) {
    var note = document.getElementById("rec-no-mic");
    if (note) { note.hidden = false; }
    return;
  }
  box.hidden = false;
  var maxSeconds = parseInt(box.getAttribute("data-max-seconds"), 10) || 180;
  var startBtn = document.getElementById("rec-start");
  var stopBtn = document.getElementById("rec-stop");
  var keepBtn = document.getElementById("rec-keep");
  var redoBtn = document.getElementById("rec-redo");
  var meter = document.getElementById("rec-level");
  var clock = document.getElementById("rec-time");
  var review = document.getElementById("rec-review");
  var player = document.getElementById("rec-audio");
  var status = document.getElementById("rec-status");
  var fileInput = document.getElementById("take-file");
  var source = document.getElementById("take-source");
  var stream = null, recorder = null, chunks = [], take = null, audioCtx = null, raf = 0, timer = 0, started = 0;
  var loudest = 0;

  function say(text) { status.textContent = text; }
  function msg(name) { return box.getAttribute("data-msg-" + name) || name; }

  function pickType() {
    var types = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
    for (var i = 0; i < types.length; i++) {
      if (MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(types[i])) { return types[i]; }
    }
    return "";
  }

  function showLevel(analyser, buf) {
    analyser.getFloatTimeDomainData(buf);
    var peak = 0;
    for (var i = 0; i < buf.length; i++) { var v = Math.abs(buf[i]); if (v > peak) { peak = v; } }
    meter.value = peak;
    meter.textContent = Math.round(peak * 100) + "%";
    if (peak > loudest) { loudest = peak; }
    raf = window.requestAnimationFrame(function () { showLevel(analyser, buf); });
  }

  function tick() {
    var s = Math.floor((Date.now() - started) / 1000);
    clock.textContent = Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
    if (s >= maxSeconds) { stop(); }
  }

  function release() {
    window.cancelAnimationFrame(raf);
    window.clearInterval(timer);
    meter.value = 0;
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    if (audioCtx) { audioCtx.close(); audioCtx = null; }
  }

  function start() {
    startBtn.disabled = true;
    review.hidden = true;
    say("");
    // The raw microphone: the server trims and normalises, and a voice call's echo cancelling, noise
    // gate and automatic gain (which pumps the level up between words) only spoil a recording.
    var raw = { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 };
    navigator.mediaDevices.getUserMedia({ audio: raw }).then(function (s) {
      stream = s;
      var AC = window.AudioContext || window.webkitAudioContext;
      if (AC) {
        audioCtx = new AC();
        var analyser = audioCtx.createAnalyser();
        analyser.fftSize = 2048;
        audioCtx.createMediaStreamSource(s).connect(analyser);
        loudest = 0;
        showLevel(analyser, new Float32Array(analyser.fftSize));
      }
      var type = pickType();
      recorder = type ? new MediaRecorder(s, { mimeType: type }) : new MediaRecorder(s);
      chunks = [];
      recorder.ondataavailable = function (e) { if (e.data && e.data.size) { chunks.push(e.data); } };
      recorder.onstop = finished;
      recorder.start(250);
      started = Date.now();
      timer = window.setInterval(tick, 250);
      stopBtn.disabled = false;
      stopBtn.focus();
      box.classList.add("recording");
    }).catch(function (err) {
      startBtn.disabled = false;
      say(msg((err && err.name === "NotAllowedError") ? "blocked" : "no-mic"));
    });
  }

  function stop() {
    if (recorder && recorder.state !== "inactive") { recorder.stop(); }
    stopBtn.disabled = true;
  }

  function finished() {
    release();
    box.classList.remove("recording");
    var type = (recorder && recorder.mimeType) || "audio/webm";
    take = new Blob(chunks, { type: type });
    if (player.src) { URL.revokeObjectURL(player.src); }
    player.src = URL.createObjectURL(take);
    review.hidden = false;
    startBtn.disabled = false;
    if (loudest > 0.99) { say(msg("loud")); }
    else if (loudest < 0.02) { say(msg("quiet")); }
    keepBtn.focus();
  }

  function keep() {
    if (!take) { return; }
    var ext = take.type.indexOf("ogg") >= 0 ? ".ogg" : take.type.indexOf("mp4") >= 0 ? ".m4a" : ".webm";
    var dt = new DataTransfer();
    dt.items.add(new File([take], "browser-take" + ext, { type: take.type }));
    fileInput.files = dt.files;
    source.value = "browser";
    keepBtn.disabled = true;
    redoBtn.disabled = true;
    say(msg("saving"));
    form.submit();
  }

  function redo() {
    take = null;
    review.hidden = true;
    player.removeAttribute("src");
    clock.textContent = "0:00";
    start();
  }

  startBtn.addEventListener("click", start);
  stopBtn.addEventListener("click", stop);
  keepBtn.addEventListener("click", keep);
  redoBtn.addEventListener("click", redo);
  form.addEventListener("submit", function () { if (source.value !== "browser") { source.value = "upload"; } });
}());
