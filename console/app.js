// mfa-recovery console. Signs the agent in with MSAL for the browser (authorization code with
// PKCE; tokens in session storage) and calls the API with the agent's own token. Everything the
// API says is shown with textContent: no markup from data, no inline script (the CSP forbids it).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const state = { cfg: null, pca: null, account: null, roles: [], summary: null, verification: null };

  // ---------- small DOM helpers ----------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }
  function clear(node) { node.replaceChildren(); return node; }
  function show(node, on = true) { node.hidden = !on; }
  function say(text, bad = false) {
    const s = $("status");
    s.textContent = text;
    s.className = bad ? "status bad" : "status";
  }
  /** A time in the agent's zone, with UTC on hover. */
  function when(iso, dateOnly = false) {
    if (!iso) return document.createTextNode("unknown");
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return document.createTextNode(iso);
    const text = dateOnly
      ? d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" })
      : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    return el("time", { datetime: d.toISOString(), title: d.toISOString().replace(".000Z", "Z") + " (UTC)", text });
  }
  function facts(pairs) {
    const dl = el("dl", { class: "facts" });
    for (const [k, v] of pairs) dl.append(el("dt", { text: k }), el("dd", {}, typeof v === "string" ? document.createTextNode(v) : v));
    return dl;
  }
  /** Ask before acting; the text repeats what will happen to whom. */
  function confirmAction(text, okLabel) {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = okLabel;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
    });
  }

  // ---------- sign-in and the API ----------
  async function token() {
    const request = { scopes: state.cfg.scopes, account: state.account };
    try {
      return (await state.pca.acquireTokenSilent(request)).accessToken;
    } catch (e) {
      if (e instanceof msal.InteractionRequiredAuthError) {
        await state.pca.acquireTokenRedirect({ scopes: state.cfg.scopes });
      }
      throw e;
    }
  }
  function rolesOf(accessToken) {
    try {
      const part = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part)).roles || [];
    } catch {
      return [];
    }
  }
  /** Call the API: `{status, body}`; the body is JSON or null. */
  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${await token()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(`/api/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let json = null;
    try { json = await r.json(); } catch { json = null; }
    return { status: r.status, body: json };
  }
  function problem(r) {
    const e = (r.body && r.body.error) || {};
    return `${e.message || "The service answered " + r.status + "."} (${e.code || r.status})`;
  }

  // ---------- views ----------
  function view(name) {
    for (const v of ["signin", "recover", "approvals", "sweep", "health"]) show($(`view-${v}`), v === name);
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.dataset.view === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    if (name === "sweep") loadSweep();
    if (name === "approvals") loadApprovals();
    if (name === "health") loadHealth().catch((x) => say(String(x), true));
  }
  /** The sections the signed-in person's roles open, in the order of the menu. */
  function allowedViews() {
    const views = [];
    for (const li of document.querySelectorAll("#nav li[data-roles]")) {
      const ok = li.dataset.roles.split(" ").some((r) => state.roles.includes(r));
      show(li, ok);
      if (ok) views.push(li.querySelector("a").dataset.view);
    }
    return views;
  }
  function route() {
    const hash = location.hash.slice(1);
    if (!state.account) return view("signin");
    const allowed = allowedViews();
    say("");
    if (hash.startsWith("approve=") && allowed.includes("approvals")) {
      view("approvals");
      $("approval-id").value = decodeURIComponent(hash.slice(8));
      openApproval();
      return;
    }
    if (!allowed.length) {
      view("signin");
      return say("Your account holds no role on mfa-recovery: ask an administrator for one.", true);
    }
    view(allowed.includes(hash) ? hash : allowed[0]);
  }

  // ---------- look up ----------
  const CHANNEL_NAMES = { sms: "SMS", email: "alternate email", manager: "the manager" };
  const METHOD_NAMES = {
    microsoftAuthenticator: "Microsoft Authenticator", phone: "Phone", fido2: "Passkey (FIDO2)",
    windowsHelloForBusiness: "Windows Hello for Business", softwareOath: "Authenticator app code (OATH)",
    hardwareOath: "Hardware token (OATH)", email: "Email (password reset only)", password: "Password",
    temporaryAccessPass: "Temporary Access Pass", platformCredential: "Platform credential (macOS)",
    external: "External method", qrCodePin: "QR code and PIN", x509Certificate: "Certificate",
  };
  /** A method kind in words: "Phone (mobile)", "Microsoft Authenticator". */
  function methodName(m) {
    const name = METHOD_NAMES[m.type] || m.type;
    if (m.type === "phone" && m.label) {
      const kind = { mobile: "mobile", alternateMobile: "alternate mobile", office: "office" }[m.label.split(" ")[0]];
      if (kind) return `${name} (${kind})`;
    }
    return name;
  }
  /** A method's detail without the kind the name already says. */
  function methodDetail(m) {
    if (m.type === "phone" && m.label) return m.label.split(" ").slice(1).join(" ");
    return m.label || "";
  }
  function methodList(list) {
    return (list || []).map((m) => `${methodName(m)}${methodDetail(m) ? ` ${methodDetail(m)}` : ""}`).join(", ") || "nothing";
  }
  /** Why no action is offered for this user, or null. */
  function cannotHelp(s) {
    if (!s.accountEnabled) return "The account is disabled: enable it in the Entra admin center first. No code or pass is offered.";
    if (s.userType === "Guest") return "A guest cannot get a Temporary Access Pass: their home organisation recovers them.";
    if (s.protected && !s.approvalRequired) return s.message || "This account is protected: a Privileged Authentication Administrator recovers it.";
    const r = s.risk || {};
    const atRisk = r.state === "confirmedCompromised" || ((r.level === "high" || r.level === "hidden") && !["dismissed", "remediated", "confirmedSafe"].includes(r.state));
    if (atRisk && !s.approvalRequired) return "Microsoft Entra ID Protection rates this user high risk: the account may already be an attacker's. Investigate and remediate the risk first.";
    if (s.eligible) return s.eligible.message;
    return null;
  }

  function renderSummary(s) {
    const box = clear($("summary"));
    box.append(el("h2", { text: s.displayName || s.userPrincipalName }));
    const protectedText = s.protected ? (s.approvalRequired ? "Yes: a second approver must agree" : "Yes") : "No";
    const policy = s.tapPolicy
      ? (!s.tapPolicy.enabled ? "the tenant's pass policy is off" : s.tapPolicy.inScope ? "in scope" : "not in scope")
      : "unknown";
    const risk = s.risk ? (s.risk.checked === false ? "not checked (no Entra ID P2)" : s.risk.level ? `${s.risk.level} (${s.risk.state || "?"})` : "none recorded") : null;
    box.append(facts([
      ["UPN", s.userPrincipalName],
      ["Account", s.accountEnabled ? "enabled" : "disabled"],
      ["Type", s.userType],
      ["Protected", protectedText],
      ["Pass policy", policy],
      ...(risk ? [["Sign-in risk", risk]] : []),
    ]));
    if (s.message) box.append(el("p", { class: "warn", text: s.message }));
    if (s.methods) {
      box.append(el("h3", { text: "Sign-in methods" }));
      const table = el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Kind" }), el("th", { scope: "col", text: "Detail" }), el("th", { scope: "col", text: "Added" }))));
      const body = el("tbody");
      for (const m of s.methods) body.append(el("tr", {}, el("td", { text: methodName(m) }), el("td", { text: methodDetail(m) }), el("td", {}, when(m.createdDateTime, true))));
      table.append(body);
      box.append(el("div", { class: "scroll" }, table));
    }
    if (s.openRequests && s.openRequests.length) {
      box.append(el("h3", { text: "Open requests" }));
      const open = el("ul");
      for (const o of s.openRequests) open.append(el("li", {}, document.createTextNode(`${o.action}, ${o.status.replace(/_/g, " ")}, asked `), when(o.createdAt), document.createTextNode(` (request ${o.requestId})`)));
      box.append(open);
    }
    if (s.channels) {
      box.append(el("h3", { text: "Addresses of record" }));
      const list = el("ul");
      for (const [name, c] of Object.entries(s.channels)) {
        const text = c.available ? `${CHANNEL_NAMES[name]}: ${c.to}` : `${CHANNEL_NAMES[name]}: not usable. ${c.message}`;
        list.append(el("li", { class: c.recentlyChanged ? "bad" : undefined, text }));
      }
      box.append(list);
    }
    show(box);
  }

  /** The usable channels as radio buttons: none chosen (the agent chooses), the manager last and,
   * when another channel exists, with a warning. */
  function radios(container, group, channels, skip, required = true) {
    clear(container);
    const names = Object.keys(channels).filter((n) => channels[n].available && n !== skip)
      .sort((a, b) => (a === "manager") - (b === "manager"));
    for (const name of names) {
      const c = channels[name];
      const id = `${group}-${name}`;
      const input = el("input", { type: "radio", name: group, id, value: name, required });
      container.append(el("label", { for: id }, input, document.createTextNode(`${CHANNEL_NAMES[name]} (${c.to})`)));
    }
    if (names.includes("manager") && names.length > 1) {
      container.append(el("p", { class: "warn hint", text: "The manager channel hands the pass to another person: use it only when the user's own phone and email are lost." }));
    }
    if (!names.length) container.append(el("p", { class: "bad", text: "No address of record can be used." }));
  }
  function chosen(group) {
    const c = document.querySelector(`input[name="${group}"]:checked`);
    return c ? c.value : null;
  }

  /** A UPN or an object id opens the user at once; anything else is searched for. */
  function isReference(text) {
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text) || /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(text);
  }
  function resetRecover() {
    for (const id of ["candidates", "summary", "cannot-help", "verify", "act", "outcome"]) show($(id), false);
    state.summary = null;
    state.verification = null;
  }
  async function lookUp(event) {
    event.preventDefault();
    const text = $("lookup-user").value.trim();
    resetRecover();
    if (isReference(text)) return openUser(text);
    say(`Searching for ${text}…`);
    const r = await api("GET", `users?search=${encodeURIComponent(text)}`);
    if (r.status !== 200) return say(problem(r), true);
    const found = r.body.value || [];
    if (found.length === 1) return openUser(found[0].id);
    const box = clear($("candidates"));
    box.append(el("h2", { text: found.length ? `${found.length} users match “${text}”` : `No user matches “${text}”` }));
    const list = el("ul", { class: "candidates" });
    for (const u of found) {
      const cues = [u.jobTitle, u.department, u.officeLocation, u.mail, u.mobilePhone].filter(Boolean).join(" · ");
      const choose = el("button", { type: "button", class: "quiet", text: `${u.displayName || u.userPrincipalName}` });
      choose.setAttribute("aria-label", `Choose ${u.displayName || u.userPrincipalName} (${u.userPrincipalName})`);
      choose.addEventListener("click", () => openUser(u.id).catch((x) => say(String(x), true)));
      list.append(el("li", {}, choose, el("span", { class: "hint", text: ` ${u.userPrincipalName}${cues ? ` · ${cues}` : ""}` })));
    }
    box.append(list);
    show(box);
    say(found.length ? "Choose the user the caller is about." : `No user matches “${text}”.`, !found.length);
  }
  async function openUser(ref) {
    resetRecover();
    say("Looking up the user…");
    const r = await api("GET", `users/${encodeURIComponent(ref)}`);
    if (r.status !== 200) return say(problem(r), true);
    showSummary(r.body);
    say(`Found ${r.body.displayName || r.body.userPrincipalName}.`);
  }
  /** Show a summary and offer what can be done for this user (or say why nothing can). */
  function showSummary(s) {
    state.summary = s;
    renderSummary(s);
    const why = cannotHelp(s);
    $("cannot-help").textContent = why || "";
    show($("cannot-help"), Boolean(why));
    if (why || !s.channels) {
      show($("verify"), false);
      show($("act"), false);
      return;
    }
    radios($("code-channels"), "code-channel", s.channels);
    show($("confirm-code"), false);
    show($("link-status"), false);
    show($("verified"), false);
    show($("send-code"));
    show($("verify"));
  }
  /** After an action: the summary read again, and the verification marked used. */
  async function refreshSummary() {
    const s = state.summary;
    if (!s) return;
    const r = await api("GET", `users/${encodeURIComponent(s.id)}`);
    if (r.status === 200) {
      state.summary = r.body;
      renderSummary(r.body);
    }
    state.verification = null;
    $("verified").textContent = "The verification was used by this recovery: verify the caller again for another one.";
    show($("send-code"));
    radios($("code-channels"), "code-channel", state.summary.channels || {});
    show($("act"), false);
  }

  // ---------- verify ----------
  function verifyMode() {
    const m = document.querySelector('input[name="verify-mode"]:checked');
    return m ? m.value : "link";
  }
  function updateSendLabel() {
    $("send-verification").textContent = verifyMode() === "link" ? "Send link" : "Send code";
  }
  async function sendCode(event) {
    event.preventDefault();
    const s = state.summary;
    const channel = chosen("code-channel");
    if (!channel) return;
    const mode = verifyMode();
    const what = mode === "link" ? "a confirmation link" : "a one-time code";
    const ok = await confirmAction(
      `Send ${what} to ${s.displayName} (${s.userPrincipalName}) by ${CHANNEL_NAMES[channel]}, to ${s.channels[channel].to}?`,
      mode === "link" ? "Send link" : "Send code",
    );
    if (!ok) return say("Nothing was sent.");
    const r = await api("POST", `users/${encodeURIComponent(s.userPrincipalName)}/verifications`, { channel, mode });
    if (r.status !== 201 && r.status !== 200) return say(problem(r), true);
    state.verification = { id: r.body.verificationId, channel, mode };
    if (mode === "link") {
      say(`A confirmation link went by ${CHANNEL_NAMES[channel]} to ${r.body.sentTo}. Ask the caller to open it on their own device and answer; this page follows.`);
      show($("confirm-code"), false);
      return watchLink(state.verification);
    }
    say(`A code went by ${CHANNEL_NAMES[channel]} to ${r.body.sentTo}. Ask the caller to read it to you.`);
    show($("link-status"), false);
    show($("confirm-code"));
    $("code").focus();
  }
  const LINK_SAID = {
    sent: ["Link sent: waiting for the caller to open it.", ""],
    opened: ["The caller opened the link: waiting for their answer.", ""],
    expired: ["The link expired before the caller answered. Send a new one.", "bad"],
    dead: ["The verification is closed. Send a new one.", "bad"],
    repudiated: ["The user answered \u201cThis is not me\u201d. Nothing was done; recoveries for them are blocked and the security team was told. End the call.", "bad"],
  };
  /** Follow a link's status (GET /api/verifications/{id}) until the user answers or it expires. */
  async function watchLink(v) {
    const box = $("link-status");
    show(box);
    for (let seen = ""; state.verification === v; await new Promise((res) => setTimeout(res, 1500))) {
      const r = await api("GET", `verifications/${encodeURIComponent(v.id)}`);
      if (state.verification !== v) return;
      if (r.status !== 200) return say(problem(r), true);
      const status = r.body.status;
      if (status === "verified") {
        show(box, false);
        $("verified").textContent = `Caller verified by a confirmation link sent by ${CHANNEL_NAMES[v.channel]}.`;
        show($("verified"));
        say("Caller verified. Choose how to recover the account.");
        return prepareAct();
      }
      if (status !== seen) {
        seen = status;
        const [text, tone] = LINK_SAID[status] || [status, ""];
        box.textContent = text;
        box.className = tone;
        if (tone === "bad") return say(text, true);
      }
    }
  }
  async function confirmCode(event) {
    event.preventDefault();
    const v = state.verification;
    const code = $("code").value.trim();
    $("code").value = "";
    const r = await api("POST", `verifications/${encodeURIComponent(v.id)}/confirm`, { code });
    if (r.status !== 200) return say(problem(r), true);
    $("verified").textContent = `Caller verified by a code sent by ${CHANNEL_NAMES[v.channel]}.`;
    show($("verified"));
    show($("confirm-code"), false);
    say("Caller verified. Choose how to recover the account.");
    prepareAct();
  }

  // ---------- recover ----------
  function prepareAct() {
    const s = state.summary;
    const used = state.verification && state.verification.channel;
    radios($("tap-channels"), "tap-channel", s.channels, used);
    updateLifetime();
    previewReset();
    show($("outcome"), false);
    show($("act"));
  }
  function updateLifetime() {
    const s = state.summary;
    const channel = chosen("tap-channel") || "email";
    const max = s.lifetimeMinutes.maximum[channel];
    const min = s.lifetimeMinutes.minimum;
    const input = $("lifetime");
    input.min = min;
    input.max = max;
    input.value = Math.min(Math.max(s.lifetimeMinutes.default, min), max);
    $("lifetime-range").textContent = `(${min} to ${max})`;
  }
  function ticket(idField) {
    return { system: $("tap-ticket-system").value, id: $(idField).value.trim() };
  }
  function outcome(nodes) {
    const box = clear($("outcome-body"));
    box.append(...nodes);
    show($("outcome"));
    $("outcome").focus();
  }
  async function issuePass(event) {
    event.preventDefault();
    const s = state.summary;
    const channel = chosen("tap-channel");
    if (!channel) return;
    const lifetime = Number($("lifetime").value);
    const to = s.channels[channel].to;
    const ok = await confirmAction(
      `Issue a Temporary Access Pass for ${s.displayName} (${s.userPrincipalName}), valid ${lifetime} minutes, sent by ${CHANNEL_NAMES[channel]} to ${to}?`,
      "Issue pass",
    );
    if (!ok) return say("Nothing was done.");
    const body = {
      delivery: { channel },
      lifetimeMinutes: lifetime,
      ticket: ticket("tap-ticket-id"),
      reason: $("tap-reason").value.trim(),
      verification: { id: state.verification.id },
    };
    const r = await api("POST", `users/${encodeURIComponent(s.userPrincipalName)}/tap`, body);
    if (r.status === 201 || r.status === 202) await refreshSummary();
    if (r.status === 201) {
      const b = r.body;
      say(`Pass issued to ${s.displayName}.`);
      return outcome([
        el("p", { class: "ok", text: `A pass was sent by ${CHANNEL_NAMES[b.delivery.channel]} to ${b.delivery.to}.` }),
        facts([
          ["Expires", when(b.expiresAt)],
          ["Usable", b.usableOnce ? "once" : "more than once"],
          ["Told", (b.notified || []).join(", ") || "nobody"],
          ["Request id", b.requestId],
        ]),
        b.warning ? el("p", { class: "warn", text: b.warning }) : null,
      ].filter(Boolean));
    }
    if (r.status === 202) {
      const b = r.body;
      say("Waiting for a second approver.");
      return outcome([
        el("p", { class: "warn", text: "This recovery waits for a second approver; nothing was sent yet." }),
        facts([["Request id", b.requestId], ["Approve before", when(b.approval && b.approval.expiresAt)]]),
      ]);
    }
    say(problem(r), true);
    outcome([el("p", { class: "bad", text: problem(r) })]);
  }
  /** The dry run of the chosen scope: what goes, what stays; the reset without a pass is offered
   * only when something stays. */
  function previewReset() {
    const s = state.summary;
    const plan = s.resetPlan[$("reset-scope").value];
    const box = clear($("reset-plan"));
    box.append(facts([["Removes", methodList(plan.remove)], ["Keeps", methodList(plan.keep)]]));
    if (plan.leavesNoMethod) box.append(el("p", { class: "warn", text: "Nothing usable stays: the pass in the same call is the user's way back in." }));
    show($("reset-only"), !plan.leavesNoMethod);
    // The pass cannot go to the mobile phone this reset removes, nor where the code went.
    const removesMobile = plan.remove.some((m) => m.type === "phone" && (m.label || "").startsWith("mobile"));
    const keep = chosen("reset-channel");
    const channels = Object.fromEntries(Object.entries(s.channels || {}).filter(([n]) => !(n === "sms" && removesMobile)));
    radios($("reset-channels"), "reset-channel", channels, state.verification && state.verification.channel, false);
    const again = keep && document.getElementById(`reset-channel-${keep}`);
    if (again) again.checked = true;
    return plan;
  }
  async function requireReset(event) {
    event.preventDefault();
    const s = state.summary;
    const scope = $("reset-scope").value;
    const plan = previewReset();
    const withPass = !(event.submitter && event.submitter.value === "only") || plan.leavesNoMethod;
    const channel = chosen("reset-channel");
    if (withPass && !channel) return say("Choose how the pass is sent.", true);
    const what = methodList(plan.remove);
    const pass = withPass ? ` A pass goes by ${CHANNEL_NAMES[channel]} to ${s.channels[channel].to}.` : "";
    const ok = await confirmAction(
      `Require ${s.displayName} (${s.userPrincipalName}) to register MFA again? This removes: ${what}, and signs them out everywhere.${pass}`,
      withPass ? "Reset and send the pass" : "Require re-registration",
    );
    if (!ok) return say("Nothing was done.");
    const body = {
      scope,
      ticket: ticket("reset-ticket-id"),
      reason: $("reset-reason").value.trim(),
      verification: { id: state.verification.id },
    };
    if (withPass) body.tap = { delivery: { channel } };
    const r = await api("POST", `users/${encodeURIComponent(s.userPrincipalName)}/mfa/reset`, body);
    if (r.status === 200 || r.status === 202 || r.status === 502) await refreshSummary();
    if (r.status === 200) {
      const t = r.body.tap;
      say(`${s.displayName} must register MFA again.`);
      return outcome([
        el("p", { class: "ok", text: `Removed: ${methodList(r.body.removed)}.` }),
        t ? el("p", { class: "ok", text: `A pass was sent by ${CHANNEL_NAMES[t.delivery.channel]} to ${t.delivery.to}.` }) : null,
        facts([
          ["Keeps", methodList(r.body.remaining)],
          ["Signed out", r.body.sessionsRevoked ? "yes" : "no"],
          ["Told", (r.body.notified || []).join(", ") || "nobody"],
          ...(t ? [["Pass expires", when(t.expiresAt)]] : []),
        ]),
      ].filter(Boolean));
    }
    if (r.status === 202) {
      say("Waiting for a second approver.");
      return outcome([
        el("p", { class: "warn", text: "This reset waits for a second approver; nothing was removed yet." }),
        facts([["Request id", r.body.requestId], ["Approve before", when(r.body.approval && r.body.approval.expiresAt)]]),
      ]);
    }
    say(problem(r), true);
    outcome([el("p", { class: "bad", text: problem(r) })]);
  }

  // ---------- approvals ----------
  async function loadApprovals() {
    const box = clear($("approval-list"));
    const r = await api("GET", "approvals");
    if (r.status !== 200) { box.append(el("p", { text: problem(r) })); return; }
    if (!r.body.value.length) { box.append(el("p", { text: "Nothing waits for an approver." })); return; }
    const table = el("table", { "aria-labelledby": "waiting-title", class: "stack" });
    table.append(el("thead", {}, el("tr", {},
      el("th", { scope: "col", text: "What" }), el("th", { scope: "col", text: "User" }),
      el("th", { scope: "col", text: "Why it waits" }), el("th", { scope: "col", text: "Approve before" }),
      el("th", { scope: "col", text: "Request" }))));
    const body = el("tbody");
    for (const b of r.body.value) {
      const reasons = el("ul", { class: "reasons" });
      for (const reason of (b.approval && b.approval.reasons) || []) reasons.append(el("li", { text: reason }));
      const open = el("button", { type: "button", class: "quiet", text: "Open", "aria-label": `Open the ${b.action} for ${b.user}` });
      open.addEventListener("click", () => { $("approval-id").value = b.requestId; openApproval().catch((x) => say(String(x), true)); });
      body.append(el("tr", {}, el("td", { text: b.action, "data-label": "What" }), el("td", { text: b.user, "data-label": "User" }), el("td", { "data-label": "Why it waits" }, reasons),
        el("td", { "data-label": "Approve before" }, when(b.approval && b.approval.expiresAt)), el("td", { "data-label": "Request" }, open)));
    }
    table.append(body);
    box.append(table);
  }
  async function openApproval(event) {
    if (event) event.preventDefault();
    const id = $("approval-id").value.trim();
    // A newer opening (a hash change and a click at once) wins: only the last one renders.
    const seq = (state.approvalSeq = (state.approvalSeq || 0) + 1);
    const r = await api("GET", `requests/${encodeURIComponent(id)}`);
    if (seq !== state.approvalSeq) return;
    const box = clear($("approval"));
    if (r.status !== 200) { say(problem(r), true); return; }
    const b = r.body;
    box.append(el("h2", { text: `${b.action || "recovery"} for ${b.user || "a user"}` }));
    const reasons = el("ul", { class: "reasons" });
    for (const reason of (b.approval && b.approval.reasons) || []) reasons.append(el("li", { text: reason }));
    const decision = b.approval && b.approval.decision;
    const asked = (b.approval && b.approval.request) || {};
    const by = asked.requestedBy || {};
    const plan = (b.approval && b.approval.plan) || {};
    const verified = (b.approval && b.approval.verification) || null;
    const person = by.person || {};
    const kinds = (list) => (list || []).map((m) => `${m.type}${m.label ? ` ${m.label}` : ""}`).join(", ") || "nothing";
    const rows = [
      ["State", b.status.replace(/_/g, " ")],
      ["Asked by", by.known
        ? `${person.upn || by.name || "?"} (object id ${person.objectId || "?"}), through ${by.via || "?"}`
        : `Unknown${by.given ? ` (the ticket names "${by.given}", not found in the directory)` : ""}, through ${by.via || "?"}: any approver may decide; find out who asked first`],
    ];
    if (plan.reset) rows.push(["Reset", `scope ${plan.reset.scope || "portal"}: removes ${kinds(plan.reset.removed)}; leaves ${kinds(plan.reset.remaining)}`]);
    rows.push(["Deliver by", plan.pass
      ? `${CHANNEL_NAMES[plan.pass.channel] || plan.pass.channel} to ${plan.pass.to || "(no address now)"}`
      : asked.channel ? CHANNEL_NAMES[asked.channel] || asked.channel : "no pass"]);
    rows.push(["Lifetime", plan.pass ? `${plan.pass.lifetimeMinutes} minutes` : asked.lifetimeMinutes ? `${asked.lifetimeMinutes} minutes` : "the default"]);
    rows.push(["Caller verified", verified
      ? verified.channel ? `code by ${verified.channel} to ${verified.sentTo}, confirmed ${verified.verifiedAt}` : `"${verified.method}" by ${verified.verifiedBy} at ${verified.verifiedAt} (typed)`
      : "not recorded"]);
    box.append(facts([
      ...rows,
      ["Reason given", asked.reason || "none"],
      ["Ticket", b.source ? `${b.source.system} ${b.source.ticket}` : "none"],
      ["Why it waits", reasons],
      ["Requested", when(b.approval && b.approval.requestedAt)],
      ["Approve before", when(b.approval && b.approval.expiresAt)],
      ["Decision", decision ? `${decision.approved ? "approved" : "denied"} by ${decision.by}: ${decision.comment}` : "none yet"],
    ]));
    if (b.status === "pending_approval") {
      const callee = by.known ? (person.upn || by.name) : "the person who asked (the ticket's owner: no person is tied to this request)";
      box.append(el("p", { class: "warn", text: `Before you approve, call ${callee} back on a number you already know (not one given in the request) and confirm they asked for this.` }));
      const form = el("form", { id: "decision" },
        el("label", { for: "decision-comment", text: "Comment (kept in the audit trail)" }),
        el("input", { id: "decision-comment", type: "text", required: true }),
        el("div", { class: "row" },
          el("button", { type: "submit", value: "approve", text: "Approve…" }),
          el("button", { type: "submit", value: "deny", class: "quiet", text: "Deny…" })));
      form.addEventListener("submit", (e) => decide(e, id, b));
      box.append(form);
    }
    show(box);
    say(`Request ${id}: ${b.status}.`);
  }
  async function decide(event, id, b) {
    event.preventDefault();
    const decision = event.submitter ? event.submitter.value : "approve";
    const comment = $("decision-comment").value.trim();
    if (!comment) return say("A comment is required.", true);
    const ok = await confirmAction(
      decision === "approve"
        ? `Approve the ${b.action || "recovery"} for ${b.user}? It runs at once.`
        : `Deny the ${b.action || "recovery"} for ${b.user}? Nothing will be done.`,
      decision === "approve" ? "Approve" : "Deny",
    );
    if (!ok) return say("Nothing was done.");
    const r = await api("POST", `requests/${encodeURIComponent(id)}/${decision}`, { comment });
    if (r.status !== 200) return say(problem(r), true);
    await openApproval();
    await loadApprovals();
    say(decision === "approve" ? "Approved: the recovery runs now." : "Denied.");
  }

  // ---------- sweep ----------
  const LEVELS = ["critical", "high", "medium"];
  function signed(n) { return n > 0 ? `+${n}` : String(n); }
  async function loadSweep() {
    const box = clear($("sweep-summary"));
    const [latest, progress, history] = await Promise.all([api("GET", "sweeps/latest"), api("GET", "sweeps/current"), api("GET", "sweeps/history")]);
    if (progress.status === 200 && progress.body.running) {
      box.append(el("p", { class: "warn", text: `Sweep ${progress.body.runId} is running: ${progress.body.users || 0} users read so far.` }));
    }
    if (latest.status === 200) {
      const b = latest.body;
      const t = b.totals || {};
      const excluded = Object.entries(t.excluded || {}).map(([k, v]) => `${v} ${{ disabled: "disabled", excludedGroup: "in excluded groups", serviceMailbox: "service mailbox" }[k] || k}`).join(", ") || "none";
      const change = b.change ? `${signed(b.change.atRisk)} since ${b.change.since}` : "first run";
      box.append(el("h2", { text: "Latest run" }), facts([
        ["Run", b.runId],
        ["Finished", when(b.finishedAt)],
        ["Users read", String(t.users ?? 0)],
        ["Members assessed", String(t.members ?? 0)],
        ["Not assessed", excluded],
        ["At risk", `${b.atRisk ?? 0} (${change})`],
      ]));
      const reasons = el("ul", { class: "reasons" });
      for (const [reason, n] of Object.entries(t.byReason || {})) reasons.append(el("li", { text: `${reason.replace(/_/g, " ")}: ${n}` }));
      box.append(el("h3", { text: "Why users are at risk" }), reasons);
    } else {
      box.append(el("p", { text: latest.status === 404 ? "No sweep has finished yet: run one now." : problem(latest) }));
    }
    const list = clear($("sweep-history"));
    const runs = history.status === 200 ? history.body.value : [];
    if (!runs.length) { list.append(el("p", { text: "No run yet." })); return; }
    const table = el("table", { "aria-labelledby": "history-title", class: "stack" });
    const head = el("tr", {}, el("th", { scope: "col", text: "Run" }), el("th", { scope: "col", text: "Finished" }), el("th", { scope: "col", text: "Started by" }), el("th", { scope: "col", text: "At risk" }));
    for (const level of LEVELS) head.append(el("th", { scope: "col", text: level }));
    table.append(el("thead", {}, head));
    const body = el("tbody");
    for (const run of runs) {
      const row = el("tr", {}, el("td", { text: run.runId, "data-label": "Run" }), el("td", { "data-label": "Finished" }, when(run.finishedAt)), el("td", { text: run.trigger, "data-label": "Started by" }),
        el("td", { text: run.change ? `${run.atRisk} (${signed(run.change.atRisk)})` : String(run.atRisk), "data-label": "At risk" }));
      for (const level of LEVELS) {
        const n = (run.byRisk || {})[level] || 0;
        row.append(el("td", { text: run.change ? `${n} (${signed(run.change.byRisk[level])})` : String(n), "data-label": level }));
      }
      body.append(row);
    }
    table.append(body);
    list.append(table);
  }
  async function runSweep() {
    const ok = await confirmAction("Run the compliance sweep now? It reads every user's registered methods at the usual pace, and may email at-risk users if nudges are on.", "Run the sweep");
    if (!ok) return say("Nothing was done.");
    const r = await api("POST", "sweeps");
    if (r.status !== 202) return say(problem(r), true);
    say("The sweep started. This page updates when it finishes.");
    for (let i = 0; i < 600; i++) {
      await new Promise((res) => setTimeout(res, 1000));
      const p = await api("GET", "sweeps/current");
      if (p.status === 200 && !p.body.running) break;
    }
    await loadSweep();
    say("The sweep finished.");
  }
  async function fetchReport(file) {
    const r = await fetch(`/api/sweeps/latest/${file}`, { headers: { Authorization: `Bearer ${await token()}` } });
    if (!r.ok) throw new Error(`the report could not be read (${r.status})`);
    return r.blob();
  }
  /** The report inside the console: the same HTML, fetched with the token, in a sandboxed frame. */
  async function showReport() {
    const url = URL.createObjectURL(await fetchReport("report.html"));
    const box = clear($("sweep-report"));
    box.append(el("h2", { text: "Latest report" }), el("iframe", { src: url, sandbox: "", title: "The latest sweep report", class: "report" }));
    show(box);
    say("The latest report is shown below.");
  }
  async function downloadCsv() {
    const url = URL.createObjectURL(await fetchReport("report.csv"));
    const a = el("a", { href: url, download: "sweep-report.csv" });
    document.body.append(a);
    a.click();
    a.remove();
    say("The CSV was downloaded.");
  }

  // ---------- health ----------
  const HEALTH_STATUS = {
    works: ["Works", "ok"], missing_permission: ["Missing permission", "bad"], not_licensed: ["Not licensed", "bad"],
    not_configured: ["Not configured", "warn"], not_checked: ["Not checked here", "warn"], failed: ["Failed", "bad"],
  };
  /** The doctor's report (GET /api/doctor): one row a read, problems first. */
  async function loadHealth() {
    const box = clear($("health-report"));
    say("Checking…");
    const r = await api("GET", "doctor");
    if (r.status !== 200) return say(problem(r), true);
    const b = r.body;
    const order = ["missing_permission", "not_licensed", "failed", "not_configured", "not_checked", "works"];
    const rows = [...b.rows].sort((x, y) => order.indexOf(x.status) - order.indexOf(y.status));
    const table = el("table", {},
      el("caption", { text: `${b.works} work, ${b.problems} need you. ${b.note}` }),
      el("thead", {}, el("tr", {}, ...["Status", "Feature", "Read", "Permission", "What was found"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...rows.map((row) => {
        const [label, tone] = HEALTH_STATUS[row.status] || [row.status, ""];
        return el("tr", { "data-status": row.status },
          el("td", { class: "nowrap" }, el("span", { class: tone, text: label })), el("td", { text: row.feature }), el("td", { text: row.check }),
          el("td", { text: row.permission || "" }), el("td", { text: row.detail }));
      })));
    box.append(el("div", { class: "scroll" }, table));
    say(b.problems ? `${b.problems} of the service's reads need you: see the rows marked in red.` : "Every read the service needs works.", b.problems > 0);
  }

  // ---------- start ----------
  async function start() {
    state.cfg = await (await fetch("config.json")).json();
    if (!state.cfg.clientId) return say(problem({ status: 503, body: state.cfg }), true);
    const auth = {
      clientId: state.cfg.clientId,
      authority: state.cfg.authority,
      redirectUri: state.cfg.redirectUri,
      postLogoutRedirectUri: state.cfg.redirectUri,
    };
    if (state.cfg.knownAuthorities) auth.knownAuthorities = state.cfg.knownAuthorities;
    if (state.cfg.authorityMetadata) auth.authorityMetadata = state.cfg.authorityMetadata;
    state.pca = new msal.PublicClientApplication({ auth, cache: { cacheLocation: "sessionStorage" } });
    await state.pca.initialize();
    const result = await state.pca.handleRedirectPromise();
    if (result && result.account) state.pca.setActiveAccount(result.account);
    state.account = state.pca.getActiveAccount() || state.pca.getAllAccounts()[0] || null;
    if (state.account) {
      state.roles = rolesOf(await token());
      $("who").textContent = `${state.account.name || state.account.username} · ${state.roles.join(", ") || "no role"}`;
      show($("nav"));
      show($("signout"));
    }
    route();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin").addEventListener("click", () => state.pca.loginRedirect({ scopes: state.cfg.scopes }));
    $("signout").addEventListener("click", () => state.pca.logoutRedirect({ account: state.account }));
    $("lookup").addEventListener("submit", (e) => lookUp(e).catch((x) => say(String(x), true)));
    for (const v of ["recover", "approvals", "sweep", "health"]) {
      document.querySelector(`#nav a[data-view="${v}"]`).addEventListener("click", () => say(""));
    }
    $("send-code").addEventListener("submit", (e) => sendCode(e).catch((x) => say(String(x), true)));
    for (const r of document.querySelectorAll('input[name="verify-mode"]')) r.addEventListener("change", updateSendLabel);
    $("confirm-code").addEventListener("submit", (e) => confirmCode(e).catch((x) => say(String(x), true)));
    $("tap-form").addEventListener("submit", (e) => issuePass(e).catch((x) => say(String(x), true)));
    $("tap-channels").addEventListener("change", updateLifetime);
    $("reset-scope").addEventListener("change", previewReset);
    $("reset-form").addEventListener("submit", (e) => requireReset(e).catch((x) => say(String(x), true)));
    $("approval-lookup").addEventListener("submit", (e) => openApproval(e).catch((x) => say(String(x), true)));
    $("sweep-run").addEventListener("click", () => runSweep().catch((x) => say(String(x), true)));
    $("sweep-report-open").addEventListener("click", () => showReport().catch((x) => say(String(x), true)));
    $("sweep-csv").addEventListener("click", () => downloadCsv().catch((x) => say(String(x), true)));
    $("health-run").addEventListener("click", () => loadHealth().catch((x) => say(String(x), true)));
    window.addEventListener("hashchange", route);
    start().catch((x) => say(`The console could not start: ${x}`, true));
  });
})();
