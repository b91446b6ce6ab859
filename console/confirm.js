// The confirmation page (GET /api/confirm/{id}): reads the secret from the URL's fragment (the
// browser never sends it), drops it from the address bar, and posts the user's answer to
// POST /api/confirm/{id}. No other script, no third party, nothing stored.
(function () {
  "use strict";
  const secret = location.hash.slice(1);
  const id = location.pathname.split("/").pop();
  const result = () => document.getElementById("result");
  const NEUTRAL = "This link cannot be used: it may have expired or been answered already. If you did not expect it, contact your IT service desk.";
  const SAID = {
    verified: "Thank you: you are verified. Tell the agent you confirmed. If you are not talking to your IT service desk right now, contact them at once.",
    repudiated: "Thank you. Nothing will be done to your account: recoveries for it are blocked for now and your answer is recorded for your IT security team. If someone called you saying they are the service desk, hang up and call the service desk yourself.",
  };
  async function send(decision) {
    const r = await fetch(`/api/confirm/${encodeURIComponent(id)}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ secret, decision }),
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    let body = null;
    try { body = await r.json(); } catch { body = null; }
    return { ok: r.ok, code: r.status, status: body && body.status, message: body && body.error && body.error.message };
  }
  function say(text, tone) {
    const box = result();
    box.textContent = text;
    box.className = tone || "";
    box.focus();
  }
  async function answer(decision) {
    const buttons = document.getElementById("buttons");
    for (const b of buttons.querySelectorAll("button")) b.disabled = true;
    try {
      const r = await send(decision);
      if (r.code === 503) {
        for (const b of buttons.querySelectorAll("button")) b.disabled = false;
        return say(r.message || "Your answer could not be taken now. Try again in a moment.", "bad");
      }
      buttons.hidden = true;
      if (r.ok && SAID[r.status]) say(SAID[r.status], r.status === "verified" ? "ok" : "warn");
      else say(r.message || NEUTRAL, "bad");
    } catch {
      for (const b of buttons.querySelectorAll("button")) b.disabled = false;
      say("Your answer could not be sent. Check your connection and try again.", "bad");
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    // Times in the user's own zone (the page carries them in UTC).
    for (const t of document.querySelectorAll("time[datetime]")) {
      const d = new Date(t.getAttribute("datetime"));
      if (!Number.isNaN(d.getTime())) t.textContent = d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    }
    // The secret leaves the address bar and the history first, whatever the page says.
    history.replaceState(null, "", location.pathname);
    const nojs = document.getElementById("nojs");
    if (nojs) nojs.hidden = true;
    const buttons = document.getElementById("buttons");
    if (!buttons) return;
    if (!secret) {
      say(NEUTRAL, "bad");
      return;
    }
    buttons.hidden = false;
    const yes = document.getElementById("confirm");
    if (yes) yes.addEventListener("click", () => answer("confirm"));
    document.getElementById("not-me").addEventListener("click", () => answer("not_me"));
    send("open").then((r) => { if (!r.ok) { buttons.hidden = true; say(r.message || NEUTRAL, "bad"); } }).catch(() => {});
  });
})();
