// The simulator's chat pane: posts a platform's signed webhook through /simulator/api/chat/<channel>
// and shows the stored conversation, polling, with each voice reply playable.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const base = location.pathname.replace(/\/$/, "");
  const channelSel = $("chat-channel"), contactSel = $("chat-contact");
  let shown = "";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fillContacts() {
    const opt = channelSel.selectedOptions[0];
    contactSel.replaceChildren(...opt.dataset.contacts.split(",").map((c) => {
      const o = el("option", "", c); o.value = c; return o;
    }));
    $("chat-voice").hidden = opt.dataset.voice !== "1";
    shown = "";
    refresh();
  }

  async function send(body, isForm) {
    const headers = {"X-CSRFToken": csrf};
    if (!isForm) headers["Content-Type"] = "application/json";
    const resp = await fetch(`${base}/api/chat/${channelSel.value}`, {method: "POST", headers,
      credentials: "same-origin", body: isForm ? body : JSON.stringify(body)});
    if (!resp.ok) { alert(await resp.text()); return; }
    refresh();
  }

  function message(kind, text, payload) {
    return send({contact: contactSel.value, kind, body: text || "", payload: payload || ""});
  }

  async function refresh() {
    const resp = await fetch(`${base}/api/chat/${channelSel.value}/${contactSel.value}`, {credentials: "same-origin"});
    if (!resp.ok) return;
    const data = await resp.json();
    const key = JSON.stringify(data);
    if (key === shown) return;
    shown = key;
    $("chat-thread").replaceChildren(...data.messages.map((m) => {
      const li = el("li", "chat-" + (m.direction === "inbound" ? "in" : "out"));
      li.dataset.status = m.status;
      li.append(el("span", "body", m.body || (m.direction === "inbound" ? "(voice note, sticker or image)" : "")));
      if (m.direction === "outbound") li.append(el("span", "detail", m.status));
      if (m.voice) {
        const audio = el("audio", "chat-voice");
        audio.controls = true; audio.preload = "auto"; audio.src = m.voice;
        li.append(audio);
      }
      return li;
    }));
    $("chat-buttons").replaceChildren(...data.buttons.map((b) => {
      const btn = el("button", "chat-button", b.label);
      btn.type = "button"; btn.dataset.payload = b.payload;
      btn.addEventListener("click", () => message("button", b.label, b.payload));
      return btn;
    }));
    const last = $("chat-thread").lastElementChild;
    if (last) last.scrollIntoView({block: "nearest"});
  }

  $("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("chat-body").value;
    if (!text.trim()) return;
    $("chat-body").value = "";
    message("text", text);
  });
  $("chat-voice").addEventListener("click", () => {
    const form = new FormData();
    form.append("contact", contactSel.value);
    form.append("kind", "voice");
    send(form, true);
  });
  $("chat-sticker").addEventListener("click", () => message("sticker"));
  channelSel.addEventListener("change", fillContacts);
  contactSel.addEventListener("change", () => { shown = ""; refresh(); });
  fillContacts();
  setInterval(refresh, 1500);
})();
