/* Taktline station tablet (templates/station/page.html). No inline JS: the CSP forbids it.
 *
 * 1. Wedge capture: a keyboard-wedge scanner "types" a barcode within a few ms per key
 *    and ends with Enter. Keystrokes are buffered here (wherever the focus is, unless a
 *    real text field has it) and timed; a fast burst ending in Enter is posted through
 *    the #capture form (htmx); slow typing is a person, and is refused with a hint
 *    (a person at a tablet without keyboard is someone testing the scanner by hand).
 * 2. Sounds (WebAudio): a short high beep for an accepted scan, a long low buzz for a
 *    rejection. Driven by #banner's data-kind / data-ref, so the tone plays once per
 *    verdict whether it came from a POST answer or over SSE (MQTT scans).
 * 3. Link state: the SSE stream (htmx-ext-sse) opens, errors and sends heartbeats;
 *    after two missed heartbeats or an error the page says "reconnecting". The server
 *    sends a full snapshot on every (re)connect, so nothing is lost meanwhile.
 *    A wedge scan made while the link is down is refused here, on the spot: red banner,
 *    reject tone, "not recorded: scan again when connected" (docs/station.md). A scan
 *    whose answer does not come within 4 s is refused the same way, and carries the
 *    server's time of sending, so the server refuses it too if it arrives later.
 * 4. Step timer: ticks every second from the server's start time and paused seconds,
 *    corrected for the tablet's clock offset; amber from 80 % of the standard time,
 *    red beyond it.
 */
(function () {
  "use strict";

  // Scanners send a key every 1-20 ms; people rarely type faster than one key per
  // 80 ms. Judge the whole burst, so one key delayed by a busy tablet does not turn a
  // scan into "typed by hand": the average gap must be scanner-fast and no gap long.
  var SCANNER_AVG_GAP_MS = 35;
  var SCANNER_MAX_GAP_MS = 300;
  var MIN_LENGTH = 2;
  var buffer = [];
  var gaps = [];
  var lastKeyAt = 0;

  function isTextField(el) {
    if (!el || el.id === "capture-input") return false;
    var tag = el.tagName;
    return (tag === "INPUT" && !el.readOnly && ["text", "search", "password", "number"].indexOf(el.type) >= 0)
      || tag === "TEXTAREA" || el.isContentEditable;
  }

  function resetBuffer() { buffer = []; gaps = []; lastKeyAt = 0; }

  function scannerFast() {
    if (gaps.length === 0) return true;
    var sum = 0, max = 0;
    for (var i = 0; i < gaps.length; i++) { sum += gaps[i]; max = Math.max(max, gaps[i]); }
    return sum / gaps.length <= SCANNER_AVG_GAP_MS && max <= SCANNER_MAX_GAP_MS;
  }

  function submitScan(text) {
    var form = document.getElementById("capture");
    var input = document.getElementById("capture-input");
    if (!form || !input) return;
    if (document.body.classList.contains("offline")) { refuseOffline(); return; }
    var sent = document.getElementById("capture-sent");
    if (sent) sent.value = new Date(Date.now() + offsetMs).toISOString();
    input.value = text;
    htmx.trigger(form, "submit");
  }

  // Not recorded: shown like a server's refusal, with its tone; never sent.
  var localRefs = 0;
  function refuseOffline() {
    var banner = document.getElementById("banner");
    var screen = document.querySelector("[data-offline-text]");
    if (!banner || !screen) return;
    localRefs += 1;
    banner.className = "banner reject";
    banner.setAttribute("data-kind", "reject");
    banner.setAttribute("data-ref", "offline-" + localRefs + "-" + Date.now());
    banner.setAttribute("data-code", "not_recorded_offline");
    var span = document.createElement("span");
    span.className = "banner-text";
    span.textContent = screen.getAttribute("data-offline-text");
    banner.replaceChildren(span);
    announce();
  }
  document.addEventListener("htmx:timeout", function (ev) {
    if (ev.target && ev.target.id === "capture") refuseOffline();
  });
  document.addEventListener("htmx:sendError", function (ev) {
    if (ev.target && ev.target.id === "capture") refuseOffline();
  });

  function hint(text) {
    var el = document.getElementById("capture-hint");
    if (!el) return;
    el.textContent = text;
    window.setTimeout(function () { el.textContent = ""; }, 4000);
  }

  document.addEventListener("keydown", function (ev) {
    if (!document.getElementById("capture")) return;
    if (isTextField(ev.target)) return;
    // The event's own time stamp: when the key arrived, not when a busy page got to it.
    var now = ev.timeStamp || performance.now();
    if (ev.key === "Enter") {
      ev.preventDefault();
      var text = buffer.join("");
      var fast = scannerFast();
      resetBuffer();
      if (text.length < MIN_LENGTH) return;
      if (fast) {
        submitScan(text);
      } else {
        var h = document.getElementById("capture-hint");
        hint(h ? h.getAttribute("data-typed-text") : "");
      }
      return;
    }
    if (ev.key.length !== 1 || ev.ctrlKey || ev.altKey || ev.metaKey) {
      // GS1 scanners send the group separator as Ctrl+] or a raw \x1d.
      if (ev.ctrlKey && ev.key === "]") { buffer.push("\x1d"); ev.preventDefault(); }
      return;
    }
    ev.preventDefault();
    if (buffer.length > 0 && now - lastKeyAt > 2000) resetBuffer(); // a stale fragment
    if (buffer.length > 0) gaps.push(now - lastKeyAt);
    buffer.push(ev.key);
    lastKeyAt = now;
  });

  // Keep the capture focused (so the scanner's keys land on this page) after a tap
  // anywhere that is not a text field; inputmode="none" keeps the on-screen keyboard away.
  function refocus() {
    var input = document.getElementById("capture-input");
    if (input && !isTextField(document.activeElement)) input.focus({ preventScroll: true });
  }
  document.addEventListener("htmx:afterSettle", refocus);
  document.addEventListener("click", function () { window.setTimeout(refocus, 0); });
  document.addEventListener("DOMContentLoaded", function () {
    refocus();
    document.body.setAttribute("data-ready", "1"); // keys typed from now on are captured
  });

  // -- sounds ------------------------------------------------------------------------
  var audio = null;
  function tone(freq, seconds, type) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = type;
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.4, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + seconds);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + seconds);
    } catch (err) {
      // No audio device: the red banner still says it.
      if (window.console) console.warn("station: no sound", err);
    }
  }
  function rejectSound() { tone(220, 0.25, "square"); window.setTimeout(function () { tone(160, 0.45, "square"); }, 280); }
  function acceptSound() { tone(1320, 0.12, "sine"); }

  var lastRef = null;
  function announce() {
    var banner = document.getElementById("banner");
    if (!banner) return;
    var ref = banner.getAttribute("data-ref");
    var kind = banner.getAttribute("data-kind");
    if (!ref || ref === lastRef) return;
    lastRef = ref;
    document.body.setAttribute("data-last-sound", kind + ":" + ref);
    if (kind === "reject") rejectSound();
    else if (kind === "ok") acceptSound();
  }
  document.addEventListener("htmx:afterSettle", announce);
  document.addEventListener("htmx:sseMessage", announce);
  document.addEventListener("DOMContentLoaded", function () {
    var banner = document.getElementById("banner");
    lastRef = banner ? banner.getAttribute("data-ref") : null; // no beep for an old verdict
  });

  // -- link state ----------------------------------------------------------------------
  var lastBeat = Date.now();
  function setLink(ok) {
    document.body.classList.toggle("offline", !ok);
  }
  document.addEventListener("htmx:sseOpen", function () {
    lastBeat = Date.now();
    setLink(true);
    document.body.setAttribute("data-live", "open");
  });
  document.addEventListener("htmx:sseError", function () { setLink(false); });
  document.addEventListener("htmx:sseMessage", function () { lastBeat = Date.now(); setLink(true); });
  window.setInterval(function () {
    var live = document.getElementById("live");
    if (!live) return;
    var beat = parseFloat(live.getAttribute("data-heartbeat") || "15") * 1000;
    if (Date.now() - lastBeat > 2.5 * beat) {
      setLink(false);
      // A half-open connection never errors: replace the element so htmx-ext-sse closes
      // the old EventSource and opens a new one (the server then sends a snapshot).
      lastBeat = Date.now();
      htmx.swap(live, live.outerHTML, { swapStyle: "outerHTML" });
    }
  }, 1000);

  // -- step timer ----------------------------------------------------------------------
  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return (m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }
  // server clock - tablet clock, from the last screen the server rendered
  var offsetMs = 0;
  function syncClock() {
    var el = document.querySelector("[data-testid=screen][data-server-now]");
    if (el && el.getAttribute("data-server-now")) {
      offsetMs = Date.parse(el.getAttribute("data-server-now")) - Date.now();
    }
  }
  document.addEventListener("htmx:afterSettle", syncClock);
  document.addEventListener("htmx:sseMessage", syncClock);
  function tick() {
    var t = document.getElementById("timer");
    if (!t || !t.getAttribute("data-started")) return;
    var now = Date.now() + offsetMs;
    var elapsed = (now - Date.parse(t.getAttribute("data-started"))) / 1000
      - parseFloat(t.getAttribute("data-paused-seconds") || "0");
    var pausedAt = t.getAttribute("data-paused-at");
    if (pausedAt) elapsed -= (now - Date.parse(pausedAt)) / 1000;
    var standard = parseFloat(t.getAttribute("data-standard") || "0");
    var el = t.querySelector(".elapsed");
    if (el) el.textContent = fmt(elapsed);
    t.classList.remove("green", "amber", "red");
    t.classList.add(elapsed > standard ? "red" : elapsed >= 0.8 * standard ? "amber" : "green");
  }
  // The andon call's age, in whole minutes.
  function andonAge() {
    var el = document.querySelector(".andon-age[data-raised-at]");
    if (!el) return;
    var minutes = Math.max(0, Math.floor((Date.now() + offsetMs - Date.parse(el.getAttribute("data-raised-at"))) / 60000));
    el.textContent = (el.getAttribute("data-template") || "").replace("%(num)s", String(minutes));
  }
  document.addEventListener("DOMContentLoaded", function () {
    syncClock();
    window.setInterval(function () { tick(); andonAge(); }, 1000);
  });

  // -- defect photo: a camera picture is shrunk here (longest side 1280 px, JPEG) so it
  // stays under DEFECT_PHOTO_MAX_BYTES; the server still checks its size and type.
  var PHOTO_SIDE = 1280;
  document.addEventListener("change", function (ev) {
    var input = ev.target;
    if (!input || input.name !== "photo" || !input.files || !input.files.length) return;
    var file = input.files[0];
    if (!/^image\//.test(file.type) || !window.createImageBitmap || !window.DataTransfer) return;
    createImageBitmap(file).then(function (bitmap) {
      var scale = Math.min(1, PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (blob) {
        if (!blob) return;
        var shrunk = new DataTransfer();
        shrunk.items.add(new File([blob], "defect.jpg", { type: "image/jpeg" }));
        input.files = shrunk.files;
        var state = input.form && input.form.querySelector(".photo-state");
        if (state) state.textContent = state.getAttribute("data-ready-text");
      }, "image/jpeg", 0.8);
    }).catch(function (err) {
      if (window.console) console.warn("station: photo kept as taken", err);
    });
  });

  // -- PIN pad and dialogs -------------------------------------------------------------
  function choosePadField(field) {
    if (!field || !field.form) return;
    var all = field.form.querySelectorAll("[data-pad-field]");
    for (var i = 0; i < all.length; i++) all[i].removeAttribute("data-active");
    field.setAttribute("data-active", "1");
  }
  document.addEventListener("click", function (ev) {
    var key = ev.target.closest ? ev.target.closest("[data-key]") : null;
    if (key) {
      var form = key.closest("form");
      // The field the keys type into: the chosen one (operator number, then PIN), else the PIN.
      var pin = form ? (form.querySelector("input[data-active]") || form.querySelector("input[name=pin]")) : null;
      if (!pin) return;
      var k = key.getAttribute("data-key");
      if (k === "next") { choosePadField(form.querySelector("input[name=pin]")); return; }
      pin.value = k === "clear" ? "" : (pin.value + k).slice(0, 16);
      return;
    }
    var field = ev.target.closest ? ev.target.closest("[data-pad-field]") : null;
    if (field) { choosePadField(field); return; }
    var close = ev.target.closest ? ev.target.closest("[data-close-dialog]") : null;
    if (close) {
      var overlay = document.getElementById("overlay");
      if (overlay) overlay.innerHTML = "";
    }
  });
})();
