// The confirmation page (GET /api/confirm/{id}, the same for every id): reads the secret from the
// URL's fragment (the browser never sends it), drops it from the address bar, proves it
// (POST /api/confirm/{id} "open") and shows what the answer carries: who asks, for what, when.
// Then it posts the user's answer. No other script, no third party, nothing stored.
(function () {
  "use strict";
  const secret = location.hash.slice(1);
  const id = location.pathname.split("/").pop();
  const $ = (x) => document.getElementById(x);
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
    return { ok: r.ok, code: r.status, status: body && body.status, page: body && body.page, message: body && body.error && body.error.message };
  }
  function say(text, tone) {
    const box = $("result");
    box.textContent = text;
    box.className = tone || "";
    box.focus();
  }
  function when(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }
  /** What the proven link carries, as text nodes only. */
  function show(page) {
    const who = page.agent ? `${page.agent} (IT service desk)` : "Your IT service desk";
    $("asks").textContent = `${who} asks to ${page.action}.`;
    const facts = $("facts");
    const rows = [["Asked at", when(page.askedAt)]];
    if (page.ticket) rows.push(["Ticket", page.ticket]);
    rows.push(page.confirmedAt ? ["Confirmed at", when(page.confirmedAt)] : ["Answer before", when(page.expiresAt)]);
    for (const [k, v] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      facts.append(dt, dd);
    }
    $("question").textContent = page.confirmedAt
      ? "Someone confirmed this already. If that was not you, say so now: nothing more will be done and your IT security team is alerted."
      : page.canConfirm
        ? "Answer only if you are talking to your IT service desk right now, because you asked them for help."
        : "This request has expired. If you did not ask for it, say so: nothing will be done and your IT security team is alerted.";
    if (!page.canConfirm) $("confirm").remove();
    $("details").hidden = false;
    $("buttons").hidden = false;
  }
  async function answer(decision) {
    const buttons = $("buttons");
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
  document.addEventListener("DOMContentLoaded", async () => {
    // The secret leaves the address bar and the history first, whatever happens next.
    history.replaceState(null, "", location.pathname);
    $("nojs").hidden = true;
    if (!secret) return say(NEUTRAL, "bad");
    $("confirm").addEventListener("click", () => answer("confirm"));
    $("not-me").addEventListener("click", () => answer("not_me"));
    try {
      const r = await send("open");
      if (r.ok && r.page) show(r.page);
      else say(r.code === 503 ? "The service cannot answer now. Try again in a few minutes." : (r.message || NEUTRAL), "bad");
    } catch {
      say("The request could not be loaded. Check your connection and try again.", "bad");
    }
  });
})();
