// The browser phone: talks JSON to /simulator/api/*, which drives the hotline's real webhooks.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const base = location.pathname.replace(/\/$/, "");
  let call = null;          // {call_sid, waiting, ended}
  let busy = false;         // one request at a time per call
  const queue = [];         // prompt URLs still to play
  const player = $("player");

  async function api(path, body, isForm) {
    const headers = {"X-CSRFToken": csrf};
    if (!isForm) headers["Content-Type"] = "application/json";
    const draft = $("draft") && $("draft").checked ? "?draft=1" : "";  // content staff: play the unpublished draft
    const resp = await fetch(base + "/api" + path + draft, {method: "POST", headers, credentials: "same-origin",
      body: isForm ? body : JSON.stringify(body || {})});
    if (!resp.ok) throw new Error((await resp.text()) || resp.statusText);
    return resp.json();
  }

  // The language of a piece of text by its script, so a screen reader reads Khmer and Thai with
  // the right voice inside this English page (the same rule as the console's `lang_attr` filter).
  function scriptLang(text) {
    if (/[\u1780-\u17ff\u19e0-\u19ff]/.test(text)) return "km";
    if (/[\u0e00-\u0e7f]/.test(text)) return "th";
    return null;
  }

  function el(tag, cls, text, lang) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    const l = lang || (text ? scriptLang(String(text)) : null);
    if (l) e.lang = l;
    return e;
  }

  // -- audio: prompts play one after another; a key press cuts them off, as on a real phone.
  function playNext() {
    if (!queue.length) { if (player.paused || player.ended) audioDone(); return; }
    if (!player.paused && !player.ended) return;
    player.src = queue.shift();
    player.play().catch(() => playNext());
  }
  player.addEventListener("ended", playNext);
  player.addEventListener("error", playNext);
  function stopAudio() { queue.length = 0; player.pause(); player.removeAttribute("src"); clearTimer(); }

  // -- a Gather times out `timeout` seconds after its prompts finish, as on a phone (unless unticked):
  // that is how a message in parts moves on, and how a caller who presses nothing is met.
  let timer = null, armed = null;
  function clearTimer() { if (timer) clearTimeout(timer); timer = null; }
  function audioDone() {
    if (!armed || timer || !$("auto-timeout").checked) return;
    const wait = armed;
    timer = setTimeout(() => {
      timer = null;
      if (call && call.waiting === wait && !busy) { addLine("note", `(no key for ${wait.timeout}s: the menu times out)`); act("/keys", {digits: ""}); }
    }, 1000 * Number(wait.timeout || 5));
  }

  function speak(text, lang) {
    if (!window.speechSynthesis || !text) return;
    try { const u = new SpeechSynthesisUtterance(text); if (lang) u.lang = lang; speechSynthesis.speak(u); }
    catch (e) { /* no voice: the words are on screen */ }
  }

  // -- transcript
  function addLine(cls, text, extra, extraLang) {
    const li = el("li", cls);
    li.append(el("span", "what", text));
    if (extra) li.append(el("span", "detail", extra, extraLang));
    $("transcript").append(li);
    li.scrollIntoView({block: "nearest"});
    return li;
  }

  function showEvent(ev) {
    switch (ev.kind) {
      case "webhook":
      case "callback": {
        const li = addLine("twiml " + ev.kind, `${ev.method} ${new URL(ev.url).pathname}${new URL(ev.url).search} → ${ev.status}`);
        const params = Object.entries(ev.params).filter(([k]) => !["AccountSid", "ApiVersion", "Called", "Caller", "FromCity", "FromCountry", "ToCountry", "Direction", "To"].includes(k));
        li.append(el("pre", "params", params.map(([k, v]) => `${k}=${v}`).join("  ")));
        li.append(el("pre", "xml", ev.twiml));
        break;
      }
      case "play": {
        const li = addLine("played", "▶ " + (ev.leg ? "(lawyer's phone) " : "") + ev.name, ev.text || "(no text for this prompt in the script)",
                          ev.text ? ev.name.split("/")[0] : null);
        li.dataset.name = ev.name;
        const want = $("lang").value, own = ev.name.split("/")[0];
        if (ev.texts && want !== own && ev.texts[want]) {
          const tr = el("span", "detail translation", `(${want}) `);
          tr.append(el("span", null, ev.texts[want], want));
          li.append(tr);
        }
        queue.push(ev.src); playNext();
        break;
      }
      case "say": {
        const li = addLine("played say", "🗣 " + ev.text, ev.language);
        if (ev.language) li.querySelector(".what").lang = String(ev.language).split("-")[0];
        speak(ev.text, ev.language);
        break;
      }
      case "pause": addLine("note", `… pause ${ev.length}s`); break;
      case "keys": addLine("keys", ev.silence ? "(silence: no key pressed)" : "☎ pressed " + ev.digits); break;
      case "beep": addLine("note", "beep: recording starts"); break;
      case "recorded": addLine("keys", `● recording sent (${ev.duration}s)`, ev.sid); break;
      case "dial": addLine("note dial", "☏ dialling " + ev.numbers.join(", ")); break;
      case "dial-result": addLine("note", "dial result: " + ev.status + (ev.bridged ? " (connected)" : " (not connected)")); break;
      case "leg-webhook": addLine("twiml webhook", `☏ ${ev.number}: ${ev.method} ${new URL(ev.url).pathname} → ${ev.status}`); break;
      case "leg-keys": addLine("note", "☏ " + ev.number + " pressed " + ev.digits); break;
      case "leg-hangup": addLine("note", "☏ " + ev.number + " not connected"); break;
      case "reject": addLine("note reject", "call rejected (not answered: free for the caller)"); break;
      case "hangup": addLine("note", "the hotline hung up"); break;
      case "caller-hangup": addLine("note", "you hung up"); break;
      case "ended": addLine("note ended", `call ended: ${ev.status}` + (ev.duration ? `, ${ev.duration}s` : "")); break;
      case "error": addLine("error", "⚠ " + ev.message); break;
      default: addLine("note", ev.kind + (ev.verb ? " " + ev.verb : ""));
    }
  }

  function setState(data) {
    call = data;
    clearTimer();
    armed = data.waiting && data.waiting.kind === "gather" ? data.waiting : null;
    data.events.forEach(showEvent);
    const w = data.waiting;
    const live = !data.ended;
    $("status").textContent = live ? `In call ${data.call_sid.slice(0, 10)}… (${data.status})` : `Call ended: ${data.status}`;
    $("status").dataset.status = live ? "in-call" : "ended";
    $("waiting").textContent = !w ? "" : w.kind === "gather" ? `Menu waiting for ${w.numDigits || "some"} key(s)` :
      w.kind === "record" ? "Recording…" : "Ringing…";
    $("waiting").dataset.kind = w ? w.kind : "";
    document.querySelectorAll(".key").forEach((b) => { b.disabled = !(w && w.kind === "gather"); });
    $("silence").disabled = !(w && w.kind === "gather");
    $("record-box").hidden = !(w && w.kind === "record");
    $("dial-box").hidden = !(w && w.kind === "dial");
    if (w && w.kind === "dial") $("dial-numbers").textContent = w.numbers.join(", ");
    $("hangup").disabled = !live;
    $("call").disabled = live;
    playNext();  // nothing to play: the Gather's timeout starts now
    refreshOutbox();
    focusStep(w, live);
  }

  // The control that was used may now be disabled or hidden (Call, a box's button): then the
  // browser drops focus to the page body and a keyboard or screen-reader user is lost. Move it to
  // what the new step asks for; leave it alone when it is still on something usable.
  function focusStep(w, live) {
    const a = document.activeElement;
    const lost = !a || a === document.body || a.disabled || a.closest("[hidden]") || !a.getClientRects().length;
    if (!lost) return;
    const target = !live ? $("call") : !w ? $("hangup") : w.kind === "gather" ? document.querySelector('.key[data-key="1"]')
      : w.kind === "record" ? $("record-h") : w.kind === "dial" ? $("dial-h") : $("hangup");
    if (target) target.focus();
  }

  async function act(path, body, isForm) {
    if (busy || !call) return;
    busy = true;
    try { setState(await api(`/calls/${call.call_sid}${path}`, body, isForm)); }
    catch (e) { addLine("error", "⚠ " + e.message); }
    finally { busy = false; }
  }

  $("call").addEventListener("click", async () => {
    if (busy) return;
    busy = true;
    $("transcript").replaceChildren();
    addLine("note", `☎ ${$("caller").value} calls ${$("callee").value}`);
    try { setState(await api("/calls", {from: $("caller").value, to: $("callee").value, lang: $("lang").value})); }
    catch (e) { addLine("error", "⚠ " + e.message); }
    finally { busy = false; }
  });
  $("hangup").addEventListener("click", () => { stopAudio(); act("/hangup"); });
  document.querySelectorAll(".key").forEach((b) => b.addEventListener("click", () => {
    stopAudio(); act("/keys", {digits: b.dataset.key});
  }));
  $("silence").addEventListener("click", () => { stopAudio(); act("/keys", {digits: ""}); });
  $("answer").addEventListener("click", () => act("/dial", {outcome: "accept"}));
  $("voicemail").addEventListener("click", () => act("/dial", {outcome: "voicemail"}));
  $("no-answer").addEventListener("click", () => act("/dial", {outcome: "no-answer"}));
  $("sample").addEventListener("click", () => act("/record", new FormData(), true));

  // -- the microphone: MediaRecorder gives webm/ogg; the server converts it to WAV as Twilio stores it.
  let recorder = null;
  $("mic").addEventListener("click", async () => {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({audio: true});
      const chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = (e) => chunks.push(e.data);
      recorder.onstop = () => {
        stream.getTracks().forEach((t) => t.stop());
        const type = recorder.mimeType || "audio/webm";
        const form = new FormData();
        form.append("audio", new Blob(chunks, {type}), type.includes("ogg") ? "rec.ogg" : "rec.webm");
        form.append("digits", "#");
        act("/record", form, true);
      };
      recorder.start();
      $("mic").hidden = true; $("mic-stop").hidden = false;
    } catch (e) { addLine("error", "⚠ microphone: " + e.message + " (send the sample instead)"); }
  });
  $("mic-stop").addEventListener("click", () => {
    if (recorder) recorder.stop();
    $("mic").hidden = false; $("mic-stop").hidden = true;
  });

  document.addEventListener("keydown", (e) => {
    if (e.target.closest("textarea, input, select")) return;
    const b = document.querySelector(`.key[data-key="${CSS.escape(e.key)}"]`);
    if (b && !b.disabled) b.click();
  });

  // -- texting
  const GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  const GSM_EXT = "^{}\\[~]|€\f";
  function smsParts(text) {
    if (!text) return 0;
    const chars = Array.from(text);
    if (chars.every((c) => GSM.includes(c) || GSM_EXT.includes(c))) {
      const units = chars.reduce((n, c) => n + (GSM_EXT.includes(c) ? 2 : 1), 0);
      return units <= 160 ? 1 : Math.ceil(units / 153);
    }
    return text.length <= 70 ? 1 : Math.ceil(text.length / 67);  // UTF-16 code units, as UCS-2 counts
  }
  $("sms-body").addEventListener("input", () => {
    $("sms-count").textContent = Array.from($("sms-body").value).length;
    $("sms-parts").textContent = smsParts($("sms-body").value);
  });
  $("sms-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = $("sms-body").value;
    if (!body.trim()) return;
    const mine = el("li", "sms out", body);
    mine.append(el("span", "parts", `${smsParts(body)} part(s)`, "en"));
    $("sms-thread").append(mine);
    $("sms-body").value = "";
    try {
      const r = await api("/sms", {from: $("sms-from").value, body});
      if (r.error) $("sms-thread").append(el("li", "error", "⚠ " + r.error));
      if (!r.replies.length) $("sms-thread").append(el("li", "note", "(no reply)"));
      r.replies.forEach((m) => {
        const li = el("li", "sms in", m.body);
        li.append(el("span", "parts", `${m.parts} part(s), ${m.encoding}`, "en"));
        $("sms-thread").append(li);
      });
    } catch (err) { $("sms-thread").append(el("li", "error", "⚠ " + err.message)); }
    refreshOutbox();
  });

  // -- outbox
  async function refreshOutbox() {
    try {
      const resp = await fetch(base + "/api/outbox", {credentials: "same-origin"});
      if (!resp.ok) return;
      const data = await resp.json();
      const items = [
        ...data.messages.map((m) => ({at: m.at, node: (() => {
          const li = el("li", "out-sms", `SMS to ${m.to} · ${m.status} · ${m.parts} part(s)` + (m.purpose ? ` · ${m.purpose}` : ""));
          li.append(el("span", "detail", m.body)); return li; })()})),
        ...data.calls.map((c) => ({at: c.at, node: el("li", "out-call",
          `Call to ${c.to} · ${c.status}` + (c.purpose ? ` · ${c.purpose}` : ""))})),
      ].sort((a, b) => (b.at || "").localeCompare(a.at || ""));
      $("outbox").replaceChildren(...items.map((i) => i.node));
      if (!items.length) $("outbox").append(el("li", "note", "nothing sent yet"));
    } catch (e) { /* the next refresh will try again */ }
  }
  $("outbox-refresh").addEventListener("click", refreshOutbox);
  $("show-twiml").addEventListener("change", (e) => document.body.classList.toggle("hide-twiml", !e.target.checked));
  setInterval(refreshOutbox, 5000);
  refreshOutbox();
})();
