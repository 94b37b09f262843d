// Live SMS-part count for an SMS reply, counted as the loader counts (hotline.menus.textnorm):
// GSM-7 160 / 153 per part, else UCS-2 70 / 67 (UTF-16 units); the character sets come from the server.
(function () {
  "use strict";
  var box = document.getElementById("value");
  var out = document.getElementById("sms-count");
  if (!box || !out || box.dataset.sms !== "1") return;
  var basic = new Set(Array.from(out.dataset.gsmBasic || ""));
  var ext = new Set(Array.from(out.dataset.gsmExt || ""));
  function count(text) {
    var chars = Array.from(text.replace(/\s+/g, " ").trim());
    var gsm = chars.every(function (c) { return basic.has(c) || ext.has(c); });
    var costs = chars.map(function (c) { return gsm ? (ext.has(c) ? 2 : 1) : (c.codePointAt(0) > 0xFFFF ? 2 : 1); });
    var single = gsm ? 160 : 70, per = gsm ? 153 : 67;
    var total = costs.reduce(function (a, b) { return a + b; }, 0);
    if (total <= single) return [1, gsm, total];
    var parts = 1, used = 0;
    costs.forEach(function (c) { if (used + c > per) { parts += 1; used = 0; } used += c; });
    return [parts, gsm, total];
  }
  function show() {
    var r = count(box.value);
    out.textContent = out.dataset.template.replace("{parts}", r[0]).replace("{encoding}", r[1] ? "GSM-7" : "UCS-2")
      .replace("{units}", r[2]);
    out.classList.toggle("error", r[0] > Number(out.dataset.max || 2));
  }
  box.addEventListener("input", show);
  show();
})();
