// The console in a real browser (Debian's Chromium, driven by playwright-core) against
// `mfa-recovery dev`: MSAL signs demo agents in through the simulated tenant's authorize and
// token endpoints; an agent looks up Adele, sends a code, reads it from the simulator's outbox,
// confirms it, issues a pass and sees the outcome; an approver approves a privileged request; an
// admin opens the sweep. axe-core checks every screen (no serious or critical violation). No pass
// or code ever reaches the browser (answers, the DOM, storage). Screenshots go to docs/console/.
//
// Run: node tests/console/console.test.mjs [path to the mfa-recovery binary]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import net from "node:net";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const binary = process.argv[2] || join(root, "target", "debug", "mfa-recovery");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
// Screenshots for docs/console.md: CONSOLE_SCREENSHOTS=docs/console to refresh them.
const shots = join(root, process.env.CONSOLE_SCREENSHOTS || join("target", "console-screenshots"));
mkdirSync(shots, { recursive: true });

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

const port = await freePort();
const simPort = await freePort();
const app = `http://127.0.0.1:${port}`;
const sim = `http://127.0.0.1:${simPort}`;
const work = mkdtempSync(join(tmpdir(), "console-"));
const dev = spawn(binary, ["dev", "--port", String(port), "--sim-port", String(simPort)], {
  env: {
    ...process.env,
    AUDIT_DIR: join(work, "audit"),
    REQUESTS_DIR: join(work, "requests"),
    SWEEP_DIR: join(work, "sweeps"),
    // Approvers are told (by email to this group), so a privileged recovery waits for one.
    APPROVAL_NOTIFY_GROUP: "a1b2c3d4-0001-4000-8000-000000000001",
    // The test runs the sweep twice in a row ("run now" waits 15 minutes otherwise).
    SWEEP_RUN_NOW_MIN_MINUTES: "0",
    RUST_LOG: "info",
  },
  stdio: ["ignore", "pipe", "pipe"],
});
let devOut = "";
dev.stdout.on("data", (d) => { devOut += d; });
dev.stderr.on("data", (d) => { devOut += d; });
for (let i = 0; i < 300 && !devOut.includes("Console:"); i++) await new Promise((r) => setTimeout(r, 100));
assert.ok(devOut.includes("Console:"), `dev did not start:\n${devOut}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const failures = [];
const answers = [];
async function outbox() {
  return (await (await fetch(`${sim}/sim/outbox`)).json()).value;
}
async function checkA11y(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) failures.push(`${name}: ${bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`).join("; ")}`);
  console.log(`axe ${name}: ${bad.length} serious or critical`);
}
async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  page.on("response", async (r) => {
    if (r.url().startsWith(app + "/api/") && !r.url().endsWith(".js")) {
      try { answers.push(await r.text()); } catch { /* a redirect has no body */ }
    }
  });
  page.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
  return page;
}
/** Every visible control inside the viewport, no page-level `overflow: hidden`, no sideways scroll. */
async function fits(page, name) {
  const fit = await page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const outside = [];
    for (const c of document.querySelectorAll("button, input, select, textarea, a")) {
      const r = c.getBoundingClientRect();
      if ((r.width === 0 && r.height === 0) || c.classList.contains("skip")) continue;
      if (r.left < -1 || r.right > vw + 1) outside.push(`${c.tagName.toLowerCase()}#${c.id || c.textContent.trim().slice(0, 30)} ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
    const clipped = [document.documentElement, document.body, document.querySelector("main")]
      .filter((e) => ["hidden", "clip"].includes(getComputedStyle(e).overflowX))
      .map((e) => e.tagName.toLowerCase());
    return { outside, clipped, scrollWidth: document.documentElement.scrollWidth, vw };
  });
  if (fit.outside.length) failures.push(`${name}: controls outside the viewport: ${fit.outside.join(", ")}`);
  if (fit.clipped.length) failures.push(`${name}: the page hides its overflow (${fit.clipped.join(", ")})`);
  if (fit.scrollWidth > fit.vw + 1) failures.push(`${name}: the page scrolls sideways (${fit.scrollWidth} px in ${fit.vw} px)`);
  console.log(`fit ${name}: ${fit.outside.length} controls outside, page ${fit.scrollWidth} of ${fit.vw} px`);
}
/**
 * The user's side of a confirmation link: the newest link to `who` in the outbox, opened on a
 * phone-sized page; the page under its own CSP, axe clean, every control inside 390 px; the
 * answer given with the keyboard alone (Tab to the button, Enter); the secret gone from the
 * address bar. Returns the link's secret.
 */
async function answerLink(who, button, said, shot) {
  const message = (await outbox()).filter((m) => String(m.to).includes(who) && m.body.includes("/api/confirm/")).pop();
  const link = message.body.match(/https?:\/\/\S+\/api\/confirm\/[0-9a-f-]{36}#[A-Za-z0-9_-]{43}/)[0];
  const secret = link.split("#")[1];
  const user = await newPage({ viewport: { width: 390, height: 844 } });
  const csp = [];
  user.on("console", (m) => { if (/Content Security Policy|Refused to/.test(m.text())) csp.push(m.text()); });
  const opened = user.waitForResponse((r) => r.url().includes("/api/confirm/") && r.request().method() === "POST");
  const response = await user.goto(link);
  assert.match(response.headers()["content-security-policy"], /default-src 'none'; script-src 'self'/);
  await user.getByRole("heading", { name: "Is it you?" }).waitFor();
  await opened;
  await user.locator("#buttons").waitFor();
  assert.match(await user.locator("#asks").textContent(), /\(IT service desk\) asks to/);
  assert.ok(!user.url().includes(secret), "the secret is dropped from the address bar");
  await checkA11y(user, `confirmation page (${shot})`);
  await fits(user, `confirmation page (${shot})`);
  for (let i = 0; i < 6; i++) {
    await user.keyboard.press("Tab");
    if (await user.evaluate((b) => document.activeElement && document.activeElement.textContent === b, button)) break;
  }
  assert.equal(await user.evaluate(() => document.activeElement.textContent), button, `${button} is reached with Tab`);
  await user.keyboard.press("Enter");
  await user.getByText(said).waitFor();
  await checkA11y(user, `confirmation answered (${shot})`);
  await user.screenshot({ path: join(shots, `confirm-${shot}.png`), fullPage: true });
  assert.deepEqual(csp, [], "no CSP violation on the confirmation page");
  assert.ok(!(await user.content()).includes(secret), "the secret is not in the page");
  await user.context().close();
  return { secret };
}
async function signIn(page, who) {
  await page.goto(`${app}/api/console/`);
  await page.getByRole("button", { name: "Sign in with Microsoft" }).click();
  await page.getByRole("button", { name: new RegExp(who) }).click();
  await page.getByRole("navigation", { name: "Sections" }).waitFor();
}

try {
  // ---- an agent: look up, verify, issue a pass ----
  const page = await newPage();
  await page.goto(`${app}/api/console/`);
  await page.getByRole("button", { name: "Sign in with Microsoft" }).waitFor();
  await checkA11y(page, "sign-in");
  await page.screenshot({ path: join(shots, "sign-in.png") });
  await page.getByRole("button", { name: "Sign in with Microsoft" }).click();
  await page.getByRole("button", { name: /Debra Berger/ }).click();
  await page.getByRole("navigation", { name: "Sections" }).waitFor();
  assert.match(await page.locator("#who").textContent(), /Recovery\.Tap/);
  // Tabs follow the roles: an agent without Recovery.Approve or Audit.Read sees neither.
  assert.equal(await page.getByRole("link", { name: "Approvals" }).count(), 0, "an agent sees no Approvals tab");
  assert.equal(await page.getByRole("link", { name: "Sweep" }).count(), 0, "an agent sees no Sweep tab");

  // A partial name finds the candidates; the agent chooses one.
  await page.getByLabel("User (name, UPN or object id)").fill("al");
  await page.getByRole("button", { name: "Look up" }).click();
  await page.getByRole("button", { name: /Choose Alex Wilber/ }).waitFor();
  assert.ok(await page.getByRole("button", { name: /Choose Allan Deyoung/ }).count(), "both Al… users are listed");
  await checkA11y(page, "candidates");
  await page.screenshot({ path: join(shots, "search.png"), fullPage: true });
  // One match opens the user at once.
  await page.getByLabel("User (name, UPN or object id)").fill("adele");
  await page.getByRole("button", { name: "Look up" }).click();
  await page.getByRole("heading", { name: "Adele Vance" }).waitFor();
  await page.getByRole("button", { name: "Send link" }).waitFor();
  assert.equal(await page.locator("#code-channels input:checked").count(), 0, "no channel is chosen for the agent");
  assert.ok(await page.getByLabel(/A confirmation link they answer on their own device/).isChecked(), "a link is the default");
  assert.match(await page.locator("#summary").textContent(), /Microsoft Authenticator/, "method kinds in words");
  await checkA11y(page, "user summary");
  await page.screenshot({ path: join(shots, "user-summary.png"), fullPage: true });

  await page.getByRole("region", { name: "Verify the caller" }).getByLabel(/alternate email/).check();
  await page.getByRole("button", { name: "Send link" }).click();
  const sendDialog = page.getByRole("dialog");
  assert.match(await sendDialog.textContent(), /Send a confirmation link to Adele Vance \(adele\.vance@contoso\.test\) by alternate email, to a\*\*\*e@/);
  await sendDialog.getByRole("button", { name: "Send link" }).click();
  await page.getByText("Link sent: waiting for the caller to open it.").waitFor();
  // The user opens the link on their own phone and answers with the keyboard alone.
  const { secret: code } = await answerLink("adele.vance", "Yes, it is me", /you are verified/, "confirm");
  await page.getByText("Caller verified by a confirmation link").waitFor();
  assert.equal(await page.locator("#tap-channels input:checked").count(), 0, "no pass channel is chosen for the agent");
  await page.locator("#tap-channels").getByLabel(/^SMS/).check();
  await page.getByLabel("Ticket number", { exact: true }).fill("INC0077001");
  await checkA11y(page, "verified, recover");
  await page.screenshot({ path: join(shots, "recover.png"), fullPage: true });
  await page.getByRole("button", { name: "Issue pass…" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /Adele Vance \(adele\.vance@contoso\.test\).*sent by SMS to/s);
  await checkA11y(page, "confirmation");
  await dialog.getByRole("button", { name: "Issue pass" }).click();
  await page.getByText(/A pass was sent by SMS to/).waitFor();
  // The verification is spent: the page says so and asks for a new one.
  await page.getByText(/The verification was used by this recovery/).waitFor();
  await checkA11y(page, "outcome");
  await page.screenshot({ path: join(shots, "outcome.png"), fullPage: true });
  const sms = (await outbox()).map((m) => m.body).find((b) => b.startsWith("Temporary Access Pass for adele.vance"));
  const pass = sms.split(": ")[1].split("\n")[0].trim();
  const dom = await page.content();
  const storage = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } }));
  for (const [what, secret] of [["pass", pass], ["link's secret", code]]) {
    assert.ok(!dom.includes(secret), `the ${what} is in the page`);
    assert.ok(!storage.includes(secret), `the ${what} is in storage`);
    assert.ok(!answers.some((a) => a.includes(secret)), `the ${what} is in an answer`);
  }
  const local = await page.evaluate(() => JSON.stringify({ ...localStorage }));
  assert.ok(!/accesstoken|idtoken|refreshtoken|eyJ/i.test(local), `a token is in local storage: ${local}`);
  console.log("agent: looked up Adele, verified the caller by a link, issued a pass; no pass or secret reached the agent's browser");

  // "This is not me": Alex's link, answered by the user with the keyboard; the agent is told.
  await page.getByLabel("User (name, UPN or object id)").fill("alex.wilber@contoso.test");
  await page.getByRole("button", { name: "Look up" }).click();
  await page.getByRole("heading", { name: "Alex Wilber" }).waitFor();
  await page.getByRole("region", { name: "Verify the caller" }).getByLabel(/alternate email/).check();
  await page.getByRole("button", { name: "Send link" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Send link" }).click();
  await page.getByText("Link sent: waiting for the caller to open it.").waitFor();
  await answerLink("alex.wilber", "This is not me", /Nothing will be done to your account/, "not-me");
  await page.locator("#link-status").getByText(/answered .This is not me./).waitFor();
  assert.ok(await page.locator("#act").isHidden(), "nothing to recover with");
  console.log("user: answered Alex's link \"This is not me\" with the keyboard; the agent's console says so");

  // A phone-sized, dark screen: Lee's reset, with its pass in the same call.
  const phone = await newPage({ viewport: { width: 390, height: 844 }, colorScheme: "dark", storageState: undefined });
  const resets = [];
  phone.on("request", (r) => { if (r.url().endsWith("/mfa/reset") && r.method() === "POST") resets.push(JSON.parse(r.postData())); });
  await signIn(phone, "Debra Berger");
  await phone.getByLabel("User (name, UPN or object id)").fill("lee.gu@contoso.test");
  await phone.getByRole("button", { name: "Look up" }).click();
  await phone.getByRole("heading", { name: "Lee Gu" }).waitFor();
  await phone.getByRole("region", { name: "Verify the caller" }).getByLabel(/^SMS/).check();
  await phone.getByLabel(/A code they read back to you/).check();
  await phone.getByRole("button", { name: "Send code" }).click();
  await phone.getByRole("dialog").getByRole("button", { name: "Send code" }).click();
  await phone.getByLabel("Code the caller reads back").waitFor();
  const leeSms = (await outbox()).filter((m) => m.channel === "sms").map((m) => m.body).filter((b) => b.includes("Your code: ")).pop();
  await phone.getByLabel("Code the caller reads back").fill(leeSms.split("Your code: ")[1].slice(0, 6));
  await phone.getByRole("button", { name: "Confirm code" }).click();
  await phone.getByText("Caller verified by a code").waitFor();
  // Every control lies inside the 390 px viewport, and nothing is cut off by overflow: hidden.
  await fits(phone, "phone, verified");
  await checkA11y(phone, "phone, dark");
  await phone.screenshot({ path: join(shots, "phone-dark.png"), fullPage: true });
  // Lee would keep nothing: only the reset with its pass is offered, and no channel is chosen.
  assert.ok(await phone.locator("#reset-only").isHidden(), "no reset without a pass when nothing would stay");
  assert.equal(await phone.locator("#reset-channels input:checked").count(), 0);
  await phone.locator("#reset-channels").getByLabel(/^alternate email/).check();
  await phone.getByLabel("Ticket number (same system as above)").fill("INC0077003");
  await phone.getByRole("button", { name: "Require re-registration and send a pass…" }).click();
  const resetDialog = phone.getByRole("dialog");
  assert.match(await resetDialog.textContent(), /Lee Gu .*A pass goes by alternate email to/s);
  await resetDialog.getByRole("button", { name: "Reset and send the pass" }).click();
  await phone.getByText(/A pass was sent by alternate email to/).waitFor();
  await checkA11y(phone, "phone, reset done");
  await fits(phone, "phone, reset done");
  assert.equal(resets.length, 1);
  assert.deepEqual(resets[0].tap, { delivery: { channel: "email" } }, "the pass in the same call");
  assert.ok(!("allowEmpty" in resets[0]), "the console never sends allowEmpty");
  console.log("agent on a phone: found Lee, verified by SMS, reset with a pass by email in one call; every control fits 390 px");

  // ---- a privileged recovery waits; an approver approves it ----
  await page.getByLabel("User (name, UPN or object id)").fill("allan.deyoung@contoso.test");
  await page.getByRole("button", { name: "Look up" }).click();
  await page.getByText("Yes: a second approver must agree").waitFor();
  await page.getByRole("region", { name: "Verify the caller" }).getByLabel(/alternate email/).check();
  await page.getByLabel(/A code they read back to you/).check();
  await page.getByRole("button", { name: "Send code" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Send code" }).click();
  await page.getByLabel("Code the caller reads back").waitFor();
  const allanMail = (await outbox()).filter((m) => m.to && String(m.to).includes("allan") || true).map((m) => m.body).filter((b) => b.includes("Your code: ")).pop();
  await page.getByLabel("Code the caller reads back").fill(allanMail.split("Your code: ")[1].slice(0, 6));
  await page.getByRole("button", { name: "Confirm code" }).click();
  await page.getByText("Caller verified by a code").waitFor();
  await page.locator("#tap-channels").getByLabel(/^SMS/).check();
  await page.getByLabel("Ticket number", { exact: true }).fill("INC0077002");
  await page.getByRole("button", { name: "Issue pass…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Issue pass" }).click();
  await page.getByText("This recovery waits for a second approver").waitFor();
  const requestId = (await page.locator("#outcome-body dd").first().textContent()).trim();
  assert.match(requestId, /^[0-9a-f-]{36}$/);
  // Looking Allan up again shows the request that waits.
  await page.getByRole("button", { name: "Look up" }).click();
  await page.getByRole("heading", { name: "Open requests" }).waitFor();
  assert.match(await page.locator("#summary").textContent(), new RegExp(`tap, pending approval, asked .*${requestId}`));
  const passesBefore = (await outbox()).filter((m) => m.body.startsWith("Temporary Access Pass for allan")).length;
  assert.equal(passesBefore, 0, "no pass before the approval");

  // The approvers' email links to the request in the console.
  const approvalMail = (await outbox()).find((m) => m.subject === "A recovery waits for your approval" && String(m.to).includes("isaiah"));
  const link = approvalMail.body.match(/http:\/\/\S+#approve=[0-9a-f-]{36}/)[0];
  assert.equal(link, `${app}/api/console/#approve=${requestId}`);
  const approver = await newPage();
  await signIn(approver, "Isaiah Langer");
  // The Approvals tab lists it.
  await approver.getByRole("link", { name: "Approvals" }).click();
  await approver.getByRole("button", { name: "Open the tap for allan.deyoung@contoso.test" }).waitFor();
  await approver.goto(link);
  await approver.getByText("pending_approval").first().waitFor();
  assert.match(await approver.locator("#approval").textContent(), /privileged/);
  await checkA11y(approver, "approval");
  await approver.screenshot({ path: join(shots, "approval.png"), fullPage: true });
  await approver.getByLabel("Comment (kept in the audit trail)").fill("called Allan back on his desk phone");
  await approver.getByRole("button", { name: "Approve…" }).click();
  const confirmApprove = approver.getByRole("dialog");
  assert.match(await confirmApprove.textContent(), /Approve the tap for allan\.deyoung@contoso\.test/);
  await confirmApprove.getByRole("button", { name: "Approve" }).click();
  await approver.getByText("Approved: the recovery runs now.").waitFor();
  await approver.getByText("Nothing waits for an approver.").waitFor();
  let sent = 0;
  for (let i = 0; i < 100 && !sent; i++) {
    sent = (await outbox()).filter((m) => m.body.startsWith("Temporary Access Pass for allan")).length;
    if (!sent) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(sent, 1, "exactly one pass after the approval");
  console.log("approver: approved a privileged request; one pass went out");

  // ---- an admin (Audit.Read): the sweep, run now, its history, the report inside the console ----
  const cspViolations = [];
  approver.on("console", (m) => { if (/Content Security Policy|Refused to/.test(m.text())) cspViolations.push(m.text()); });
  await approver.getByRole("link", { name: "Sweep" }).click();
  await approver.getByRole("heading", { name: "Compliance sweep" }).waitFor();
  await approver.getByRole("button", { name: "Run the sweep now…" }).click();
  await approver.getByRole("dialog").getByRole("button", { name: "Run the sweep" }).click();
  await approver.getByText("The sweep finished.").waitFor({ timeout: 60000 });
  await approver.getByRole("heading", { name: "Latest run" }).waitFor();
  const summaryText = await approver.locator("#sweep-summary").textContent();
  assert.match(summaryText, /disabled/, "disabled accounts are counted as not assessed");
  assert.match(summaryText, /service mailbox/, "the service mailbox is not assessed");
  assert.equal(await approver.locator("#sweep-history tbody tr").count(), 1);
  await approver.getByRole("button", { name: "Show the latest report" }).click();
  const frame = approver.frameLocator("iframe.report");
  await frame.getByRole("heading", { name: /Who would be locked out/ }).waitFor();
  const font = await frame.locator("body").evaluate((b) => getComputedStyle(b).backgroundColor);
  assert.equal(font, "rgb(250, 250, 250)", "the report's style sheet applies under the console's CSP");
  await checkA11y(approver, "sweep");
  await approver.screenshot({ path: join(shots, "sweep.png"), fullPage: true });
  assert.deepEqual(cspViolations, [], "no CSP violation");
  // A second run shows the trend against the first.
  await approver.getByRole("button", { name: "Run the sweep now…" }).click();
  await approver.getByRole("dialog").getByRole("button", { name: "Run the sweep" }).click();
  await approver.getByText("The sweep finished.").waitFor({ timeout: 60000 });
  await approver.locator("#sweep-history tbody tr").nth(1).waitFor();
  assert.match(await approver.locator("#sweep-history tbody tr").first().textContent(), /\(\+?-?\d+\)/);
  console.log("admin: ran the sweep twice from the console; history with trends; report shown under the CSP");

  // ---- an admin (Audit.Read): the health view, the doctor's report (GET /api/doctor) ----
  // The tenant loses Entra ID P2 first: the risk row says so (not a permission, and not red).
  await fetch(`${sim}/sim/licenses`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ entraIdP2: false }) });
  await approver.getByRole("link", { name: "Health" }).click();
  await approver.getByRole("heading", { name: "Health" }).waitFor();
  await approver.locator("#health-report tbody tr").first().waitFor();
  const healthRows = await approver.locator("#health-report tbody tr").allTextContents();
  assert.ok(healthRows.length >= 20, `one row a read: ${healthRows.length}`);
  assert.ok(healthRows.some((r) => /^WorksTemporary Access Passthe Temporary Access Pass policy/.test(r)), healthRows.join("\n"));
  assert.ok(healthRows.some((r) => /^Not configuredRisky users held.*Entra ID P2/.test(r)), healthRows.join("\n"));
  assert.ok(healthRows.some((r) => /^Not checked here.*Mail\.Send/.test(r)), healthRows.join("\n"));
  assert.equal(await approver.locator('#health-report tr[data-status="missing_permission"]').count(), 0);
  assert.match(await approver.locator("#health-report caption").textContent(), /0 need you\. Checked with the function app's identity/);
  await checkA11y(approver, "health");
  await approver.screenshot({ path: join(shots, "health.png"), fullPage: true });
  assert.equal(await page.getByRole("link", { name: "Health" }).count(), 0, "an agent sees no Health tab");
  console.log(`admin: the health view lists ${healthRows.length} reads; the missing P2 licence is said on its row`);

  // The approver's and the admin's screens on a phone.
  const phone2 = await newPage({ viewport: { width: 390, height: 844 } });
  await signIn(phone2, "Isaiah Langer");
  assert.equal(await phone2.getByRole("link", { name: "Recover a user" }).count(), 0, "an approver without agent roles sees no Recover tab");
  await phone2.getByRole("heading", { name: "Approvals" }).waitFor();
  await fits(phone2, "phone, approvals");
  await phone2.getByRole("link", { name: "Sweep" }).click();
  await phone2.locator("#sweep-history tbody tr").first().waitFor();
  await fits(phone2, "phone, sweep");
  await checkA11y(phone2, "phone, sweep");
  await phone2.getByRole("link", { name: "Health" }).click();
  await phone2.locator("#health-report tbody tr").first().waitFor();
  await fits(phone2, "phone, health");
} finally {
  await browser.close();
  dev.kill("SIGTERM");
}
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log("console: ok");
