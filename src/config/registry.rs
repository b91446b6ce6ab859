//! Every setting, with its owner, meaning and default: the one registry `docs/configuration.md`'s
//! table is checked against (`tests/api/infra.rs`), and that every key `Settings::from_map` reads
//! must be in (checked on each read in debug builds). Generated once from the table; keep the two
//! in step (the test says which row differs).

/// One row: the keys it covers (a row may group related keys), the subsystem that owns them, what
/// they mean and the default, as the table shows them.
#[derive(Debug, Clone, Copy)]
pub struct SettingDoc {
    pub keys: &'static [&'static str],
    pub owner: &'static str,
    pub meaning: &'static str,
    pub default: &'static str,
}

/// Settings that the platform or the Functions host reads, not `Settings::from_map` (listed so
/// the templates' contract test knows them).
pub fn is_registered(key: &str) -> bool {
    SETTINGS.iter().any(|s| s.keys.contains(&key)) || HOST_MARKERS.contains(&key)
}

/// Read only to tell whether a Functions host runs this process (JSON logs by default).
pub(crate) const HOST_MARKERS: [&str; 3] = [
    "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
    "FUNCTIONS_WORKER_RUNTIME",
    "WEBSITE_SITE_NAME",
];

pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc {
        keys: &["FUNCTIONS_CUSTOMHANDLER_PORT"],
        owner: "host",
        meaning: "Port the Functions host gave the handler; it listens on `127.0.0.1` only.",
        default: "`7071`",
    },
    SettingDoc {
        keys: &["GRAPH_ENDPOINT"],
        owner: "graph",
        meaning: "Microsoft Graph base URL, without the version (sovereign clouds: `https://graph.microsoft.us`, `https://microsoftgraph.chinacloudapi.cn`).",
        default: "`https://graph.microsoft.com`",
    },
    SettingDoc {
        keys: &["AZURE_CLIENT_ID"],
        owner: "azure",
        meaning: "Client id (GUID) of the user-assigned managed identity.",
        default: "unset: system-assigned identity",
    },
    SettingDoc {
        keys: &["IDENTITY_ENDPOINT", "IDENTITY_HEADER"],
        owner: "azure",
        meaning: "Set by the platform; the managed identity credential reads them. Never set them yourself in Azure.",
        default: "set by App Service",
    },
    SettingDoc {
        keys: &["AUTH_TENANT_ID"],
        owner: "auth",
        meaning: "Entra tenant id (GUID) whose callers may use the API. The command line accepts no tokens and runs without it.",
        default: "**required**",
    },
    SettingDoc {
        keys: &["AUTH_AUDIENCE"],
        owner: "auth",
        meaning: "App ID URI of this API's app registration (the `aud` of v1 caller tokens); a comma-separated list is accepted. The first is also how the API's service principal is found (to refuse holders and owners of its roles), so the command line's `tap`, `reset` and `verify` need it too; `sweep`, `audit` and `config` do not.",
        default: "**required**",
    },
    SettingDoc {
        keys: &["AUTH_CLIENT_ID"],
        owner: "auth",
        meaning: "Client (application) id of the API's registration, accepted as an audience too (v2 tokens carry it). The templates set both.",
        default: "unset",
    },
    SettingDoc {
        keys: &["AUTH_ALLOWED_CLIENT_APPS"],
        owner: "auth",
        meaning: "Comma-separated client ids (`azp`/`appid`) of the applications allowed to call (the Power Automate connector, the ServiceNow integration, ...); tokens obtained by any other app are refused.",
        default: "unset: any app whose caller holds a role",
    },
    SettingDoc {
        keys: &["AUTH_SCOPE"],
        owner: "auth",
        meaning: "The scope a delegated (user) token must carry in `scp`; a user token without it is refused.",
        default: "`user_impersonation`",
    },
    SettingDoc {
        keys: &["AUTH_AUTHORITY"],
        owner: "auth",
        meaning: "Entra login endpoint; the token issuer and JWKS derive from it (`https://login.microsoftonline.us` for US Gov).",
        default: "`https://login.microsoftonline.com`",
    },
    SettingDoc {
        keys: &["KEY_VAULT_URI"],
        owner: "secrets",
        meaning: "Vault holding connector secrets, e.g. `https://kv-mfa-recovery.vault.azure.net/`.",
        default: "unset (required once a connector needs a secret)",
    },
    SettingDoc {
        keys: &["AzureWebJobsStorage__blobServiceUri"],
        owner: "storage",
        meaning: "Blob endpoint of the function app's storage (audit trail, request records).",
        default: "derived from `__accountName`",
    },
    SettingDoc {
        keys: &["AzureWebJobsStorage__queueServiceUri"],
        owner: "storage",
        meaning: "Queue endpoint (`recovery-requests`).",
        default: "derived from `__accountName`",
    },
    SettingDoc {
        keys: &["AzureWebJobsStorage__tableServiceUri"],
        owner: "storage",
        meaning: "Table endpoint, for the Functions host's own use (as Microsoft's Flex Consumption samples set it; the identity has Storage Table Data Contributor). The binary does not read it.",
        default: "set by the templates",
    },
    SettingDoc {
        keys: &["AzureWebJobsStorage__accountName"],
        owner: "storage",
        meaning: "Storage account name; expands to `https://<name>.{blob,queue}.core.windows.net`.",
        default: "unset",
    },
    SettingDoc {
        keys: &["AzureWebJobsStorage__credential"],
        owner: "storage",
        meaning: "`managedidentity` (read by the Functions host).",
        default: "set by the templates",
    },
    SettingDoc {
        keys: &["AzureWebJobsStorage__clientId"],
        owner: "storage",
        meaning: "User-assigned identity for storage, if not the default.",
        default: "unset",
    },
    SettingDoc {
        keys: &["AUDIT_CONTAINER"],
        owner: "audit",
        meaning: "Blob container of the audit trail, in the storage account above.",
        default: "`audit`",
    },
    SettingDoc {
        keys: &["AUDIT_REFUSAL_SECONDS"],
        owner: "audit",
        meaning: "Calls refused for lack of valid credentials are counted per source and action and recorded in aggregate once per this many seconds (1 to 3600).",
        default: "`60`",
    },
    SettingDoc {
        keys: &["AUDIT_KEY_SECRET"],
        owner: "audit",
        meaning: "Key Vault secret (random text; the templates create it) that signs the trail's anchors and the decisions the worker acts on (approvals, verifications, blocks), so that storage access alone cannot forge them. Its versions are the key ids: rotate by adding a version, keep the old ones enabled. Without `KEY_VAULT_URI` the trail is unsigned. See [audit.md](audit.md).",
        default: "`audit-key`",
    },
    SettingDoc {
        keys: &["AUDIT_DIR"],
        owner: "audit",
        meaning: "Keep the audit trail in this local directory instead (for `dev` and tests; same format).",
        default: "unset (`.dev/audit` in `dev`)",
    },
    SettingDoc {
        keys: &["WEBHOOK_SENDERS"],
        owner: "auth",
        meaning: "JSON list of senders that sign webhooks instead of presenting tokens: `[{\"name\": \"servicenow\", \"scheme\": \"standard-webhooks\" or \"jira\", \"secrets\": [\"<Key Vault secret name>\", …up to 3], \"roles\": [\"Recovery.Request\"]}]`. Needs `KEY_VAULT_URI`. See [security.md](security.md).",
        default: "unset: tokens only",
    },
    SettingDoc {
        keys: &["LIMITS_CONTAINER"],
        owner: "recovery",
        meaning: "Blob container of the rate-limit slots (one small document per limited user or caller, changed only with `If-Match`), in the storage account above.",
        default: "`recovery-limits`",
    },
    SettingDoc {
        keys: &["LIMITS_DIR"],
        owner: "recovery",
        meaning: "Keep the rate-limit slots in this local directory instead.",
        default: "unset (`limits/` inside `AUDIT_DIR` when that is set)",
    },
    SettingDoc {
        keys: &["REQUESTS_CONTAINER"],
        owner: "intake",
        meaning: "Blob container of the intake's request records, in the storage account above.",
        default: "`recovery-requests`",
    },
    SettingDoc {
        keys: &["REQUESTS_DIR"],
        owner: "intake",
        meaning: "Keep request records in this local directory instead, with an in-process queue playing the host (for `dev` and tests).",
        default: "unset (`.dev/requests` in `dev`)",
    },
    SettingDoc {
        keys: &["REQUEST_CLAIM_SECONDS"],
        owner: "intake",
        meaning: "How long a worker's claim on a request holds before another delivery of its message may take it over (the host's own retry of the message takes over at once). Keep it at or above the function timeout.",
        default: "`600`",
    },
    SettingDoc {
        keys: &["SERVICENOW_INSTANCE_URL"],
        owner: "intake",
        meaning: "ServiceNow instance for write-back, `https://<instance>.service-now.com`. See [servicenow.md](servicenow.md).",
        default: "unset: no ServiceNow write-back",
    },
    SettingDoc {
        keys: &["SERVICENOW_TABLE"],
        owner: "intake",
        meaning: "Table of the records requests come from.",
        default: "`incident`",
    },
    SettingDoc {
        keys: &["SERVICENOW_USER", "SERVICENOW_PASSWORD_SECRET"],
        owner: "intake",
        meaning: "Integration user, and the Key Vault secret holding its password.",
        default: "required with `SERVICENOW_INSTANCE_URL`",
    },
    SettingDoc {
        keys: &["SERVICENOW_CALLERS"],
        owner: "intake",
        meaning: "Comma-separated object ids of token callers (the ServiceNow integration's identity) whose queued requests are written back to the record they name. Requests signed by the webhook sender named `servicenow` are written back too; anyone else's result goes only to the status URL and its callback.",
        default: "none",
    },
    SettingDoc {
        keys: &["SERVICENOW_FIELDS"],
        owner: "intake",
        meaning: "JSON object mapping request fields to ServiceNow payload fields (dotted paths; `=value` for a constant), merged over the defaults in [servicenow.md](servicenow.md).",
        default: "defaults",
    },
    SettingDoc {
        keys: &["JIRA_BASE_URL"],
        owner: "intake",
        meaning: "Jira Service Management site for write-back, `https://<site>.atlassian.net`. See [jira.md](jira.md).",
        default: "unset: no Jira write-back",
    },
    SettingDoc {
        keys: &["JIRA_USER", "JIRA_API_TOKEN_SECRET"],
        owner: "intake",
        meaning: "Atlassian account (email) and the Key Vault secret holding its API token.",
        default: "required with `JIRA_BASE_URL`",
    },
    SettingDoc {
        keys: &["JIRA_CALLERS"],
        owner: "intake",
        meaning: "As `SERVICENOW_CALLERS`, for Jira (requests signed by the webhook sender named `jira` qualify on their own).",
        default: "none",
    },
    SettingDoc {
        keys: &["JIRA_FIELDS"],
        owner: "intake",
        meaning: "JSON object mapping request fields to paths in the Jira issue (`fields.customfield_10050`), merged over the defaults in [jira.md](jira.md).",
        default: "defaults",
    },
    SettingDoc {
        keys: &["CALLBACK_SIGNING_SECRET"],
        owner: "intake",
        meaning: "Key Vault secret (`whsec_…` or base64) that signs result callbacks (Standard Webhooks).",
        default: "unset: `callbackUrl` refused",
    },
    SettingDoc {
        keys: &["CALLBACK_ALLOWED_HOSTS"],
        owner: "intake",
        meaning: "Comma-separated hosts a request's `callbackUrl` may point at (https only).",
        default: "none",
    },
    SettingDoc {
        keys: &["TAP_DEFAULT_LIFETIME_MINUTES"],
        owner: "recovery",
        meaning: "Lifetime when a request names none (bounded by the policy and the channel).",
        default: "`60`",
    },
    SettingDoc {
        keys: &[
            "TAP_MAX_MINUTES_SMS",
            "TAP_MAX_MINUTES_EMAIL",
            "TAP_MAX_MINUTES_MANAGER",
        ],
        owner: "recovery",
        meaning: "Longest pass per delivery channel (see the strict profile in [tap.md](tap.md)).",
        default: "`60`, `480`, `480`",
    },
    SettingDoc {
        keys: &["TAP_ALLOW_MULTI_USE"],
        owner: "recovery",
        meaning: "Whether a request may ask for a multi-use pass (the tenant policy must allow it too).",
        default: "`false`",
    },
    SettingDoc {
        keys: &["TAP_PROTECTED_GROUPS"],
        owner: "recovery",
        meaning: "Comma-separated group object ids whose members (transitive, active or PIM-eligible) are refused like role holders (every holder of a directory role, active or eligible, at any scope, and of this API's app roles, is refused anyway: [security.md](security.md)).",
        default: "none",
    },
    SettingDoc {
        keys: &["TAP_MAX_PER_TARGET_PER_DAY"],
        owner: "recovery",
        meaning: "Passes (and, separately, resets) per user per 24 hours; attempts count; reserved atomically across instances.",
        default: "`2`",
    },
    SettingDoc {
        keys: &["TAP_MAX_PER_CALLER_PER_HOUR"],
        owner: "recovery",
        meaning: "Passes and verification codes (one count) and, separately, resets, per caller per hour.",
        default: "`20`",
    },
    SettingDoc {
        keys: &["USER_LOOKUPS_PER_CALLER_PER_HOUR"],
        owner: "recovery",
        meaning: "Look-ups (`GET /api/users/{user}`, the console) per agent per hour, so a stolen agent session cannot list the tenant's users and methods; `429 rate_limited` beyond.",
        default: "`120`",
    },
    SettingDoc {
        keys: &["TAP_REQUIRE_VERIFICATION"],
        owner: "recovery",
        meaning: "How a recovery shows the caller was verified: `service` (only a verification the service made, named by `verification.id`: a code the service sent and the caller confirmed, or a confirmation link the user answered: [verification.md](verification.md)), `attested` (the typed block `method`, `verifiedBy`, `verifiedAt`; `true` means the same) or `false`. The templates set `service`.",
        default: "`attested`",
    },
    SettingDoc {
        keys: &["VERIFICATION_CODE_MINUTES"],
        owner: "recovery",
        meaning: "How long a verification code may be confirmed, or a confirmation link answered \"it is me\" (1 to 60).",
        default: "`10`",
    },
    SettingDoc {
        keys: &["VERIFICATION_MAX_PER_TARGET_PER_DAY"],
        owner: "recovery",
        meaning: "Verification codes sent to one user per 24 hours, whoever sends them (1 to 100); attempts count, reserved atomically across instances; `429 rate_limited` beyond. Each code also counts in its sender's `TAP_MAX_PER_CALLER_PER_HOUR`, with the passes.",
        default: "`5`",
    },
    SettingDoc {
        keys: &["RISK_CHECK"],
        owner: "recovery",
        meaning: "Entra ID Protection's risk of the user, read before a code or a pass (`GET /identityProtection/riskyUsers/{id}`, IdentityRiskyUser.Read.All, Entra ID P2): `high` or `confirmedCompromised` is refused (`user_at_risk`) or, with approvals on, held (`at_risk`); `medium` is shown and recorded. `if_available` skips a tenant without the licence (and records so) and fails closed on any other failed read; `required` fails closed on every failed read; `off` never reads it. See [security.md](security.md).",
        default: "`if_available`",
    },
    SettingDoc {
        keys: &["NOT_ME_BLOCK_HOURS"],
        owner: "recovery",
        meaning: "After the user answers a confirmation link \"This is not me\", no recovery for them (no pass, no reset, no code, no link) for this many hours: `423 recovery_blocked`. An approver may lift it earlier (`POST /api/users/{user}/recovery-block/lift`). 1 to 720. See [verification.md](verification.md).",
        default: "`24`",
    },
    SettingDoc {
        keys: &["NOT_ME_REVOKE_SESSIONS"],
        owner: "recovery",
        meaning: "\"This is not me\" also revokes the user's sessions (Graph `revokeSignInSessions`), so whoever may already be signed in as them must sign in again.",
        default: "`false`",
    },
    SettingDoc {
        keys: &["VERIFICATION_SAME_CHANNEL"],
        owner: "recovery",
        meaning: "Let the pass go through the channel the code went to (by default it must be another, so one swapped SIM or one edited address is not enough).",
        default: "`false`",
    },
    SettingDoc {
        keys: &["ADDRESS_MIN_AGE_DAYS"],
        owner: "recovery",
        meaning: "An address of record (the phone methods, `mobilePhone`, `otherMails`, the manager) changed in the directory audit log within this many days is not used for a code or a pass: `address_recently_changed`. 0 turns the check off; at most 30, the days Entra keeps its directory audit log by default (a longer window would pass an address whose change the log no longer shows: a start-up error). Needs AuditLog.Read.All and Directory.Read.All. See [verification.md](verification.md).",
        default: "`7`",
    },
    SettingDoc {
        keys: &["VERIFICATION_KEY_SECRET"],
        owner: "recovery",
        meaning: "Key Vault secret (any random text) that keys the hashes of verification codes and links' secrets; they are stored only as that keyed hash.",
        default: "`verification-key`",
    },
    SettingDoc {
        keys: &["TAP_VERIFICATION_MAX_AGE_MINUTES"],
        owner: "recovery",
        meaning: "How old a verification may be.",
        default: "`30`",
    },
    SettingDoc {
        keys: &["APPROVAL_REQUIRED_FOR"],
        owner: "recovery",
        meaning: "What waits for a second approver (`Recovery.Approve`) instead of being refused or done at once: any of `privileged`, `reset_all`, `manager_channel`, `all`, comma-separated, or `none`. Needs `APPROVAL_NOTIFY_GROUP` or `APPROVAL_WEBHOOK`. See [approval.md](approval.md).",
        default: "`privileged` when approvers are told (`APPROVAL_NOTIFY_GROUP` or `APPROVAL_WEBHOOK`), else `none` (privileged targets refused)",
    },
    SettingDoc {
        keys: &["APPROVAL_TIMEOUT_MINUTES"],
        owner: "recovery",
        meaning: "How long a request waits for an approver before it expires (`approval_expired`), 5 to 1440.",
        default: "`60`",
    },
    SettingDoc {
        keys: &["APPROVAL_NOTIFY_GROUP"],
        owner: "recovery",
        meaning: "Object id of a group whose members (with a mailbox) are emailed when a request waits for approval; sent like notices (`EMAIL_PROVIDER`).",
        default: "unset",
    },
    SettingDoc {
        keys: &["APPROVAL_WEBHOOK"],
        owner: "recovery",
        meaning: "An https endpoint (a Teams Workflows or Logic App trigger URL) sent `recovery.approval.requested`, signed with `CALLBACK_SIGNING_SECRET`. Its query is a credential: set it as a Key Vault reference.",
        default: "unset",
    },
    SettingDoc {
        keys: &["SECURITY_ALERT_WEBHOOK"],
        owner: "recovery",
        meaning: "An https endpoint sent `recovery.privileged.attempt` for every attempt on a privileged account (a verification code sent, held for approval, approved, denied, expired or refused) and `recovery.privileged.lookup` for every look at one in the console, `recovery.repudiated` when a user answers a confirmation link \"this is not me\" and `recovery.block.lifted` when an approver ends that block, signed with `CALLBACK_SIGNING_SECRET`, so a SOC sees it.",
        default: "unset",
    },
    SettingDoc {
        keys: &["CONSOLE_URL", "WEBSITE_HOSTNAME"],
        owner: "recovery",
        meaning: "The console's address, linked from approval emails and webhooks (`…/api/console/#approve=<id>`); its origin is also the confirmation links' (`…/api/confirm/{id}`). `WEBSITE_HOSTNAME` is set by the platform; it is read only for this default.",
        default: "`https://{WEBSITE_HOSTNAME}/api/console/`",
    },
    SettingDoc {
        keys: &["TAP_RETURN_TO_CALLER"],
        owner: "recovery",
        meaning: "Put the pass in the HTTP answer. **A risk**: see [tap.md](tap.md).",
        default: "`false`",
    },
    SettingDoc {
        keys: &["SMS_NUMBER_SOURCE"],
        owner: "delivery",
        meaning: "`methods` (the registered mobile phone method) or `attribute` (the `mobilePhone` profile field).",
        default: "`methods`",
    },
    SettingDoc {
        keys: &["SMS_PROVIDER"],
        owner: "delivery",
        meaning: "`acs` or `twilio`.",
        default: "`acs` when `ACS_SMS_FROM` is set, else `twilio` when configured",
    },
    SettingDoc {
        keys: &["EMAIL_PROVIDER"],
        owner: "delivery",
        meaning: "`graph` (sendMail from `MAIL_SENDER`) or `acs`.",
        default: "`graph`",
    },
    SettingDoc {
        keys: &["MAIL_SENDER"],
        owner: "delivery",
        meaning: "UPN of the service mailbox for email delivery and notices (`saveToSentItems: false`).",
        default: "unset",
    },
    SettingDoc {
        keys: &["ACS_ENDPOINT"],
        owner: "delivery",
        meaning: "Azure Communication Services resource, `https://<name>.communication.azure.com`.",
        default: "unset",
    },
    SettingDoc {
        keys: &["ACS_ACCESS_KEY_SECRET"],
        owner: "delivery",
        meaning: "Key Vault secret name holding the ACS access key (base64).",
        default: "required with `ACS_ENDPOINT`",
    },
    SettingDoc {
        keys: &["ACS_SMS_FROM", "ACS_EMAIL_FROM"],
        owner: "delivery",
        meaning: "ACS sending number (E.164) and sender address.",
        default: "unset",
    },
    SettingDoc {
        keys: &["TWILIO_ACCOUNT_SID", "TWILIO_FROM"],
        owner: "delivery",
        meaning: "Twilio account and sending number (E.164).",
        default: "unset",
    },
    SettingDoc {
        keys: &["TWILIO_AUTH_TOKEN_SECRET"],
        owner: "delivery",
        meaning: "Key Vault secret name holding the Twilio auth token.",
        default: "required with `TWILIO_ACCOUNT_SID`",
    },
    SettingDoc {
        keys: &["TWILIO_ENDPOINT"],
        owner: "delivery",
        meaning: "Twilio API base URL.",
        default: "`https://api.twilio.com`",
    },
    SettingDoc {
        keys: &["TAP_MESSAGE_TEMPLATE"],
        owner: "delivery",
        meaning: "The text that carries the pass; must contain `{pass}`, may use `{upn}`, `{expires}` (UTC), `{usage}` (\", one use\"), `{contact}`; `\\n` for a new line. `{ticket}` is refused: text a caller chose never travels with a pass.",
        default: "built-in text with the next steps",
    },
    SettingDoc {
        keys: &["NOTICE_CONTACT"],
        owner: "delivery",
        meaning: "Whom a user should contact if a change was not theirs (in every notice).",
        default: "`your IT service desk`",
    },
    SettingDoc {
        keys: &["SWEEP_SCHEDULE"],
        owner: "sweep",
        meaning: "6-field NCRONTAB of the compliance sweep, UTC (`{second} {minute} {hour} {day} {month} {day-of-week}`).",
        default: "`0 0 2 * * *` (02:00 UTC daily)",
    },
    SettingDoc {
        keys: &["SWEEP_CONTAINER"],
        owner: "sweep",
        meaning: "Blob container of the sweep's runs and reports.",
        default: "`sweeps`",
    },
    SettingDoc {
        keys: &["SWEEP_DIR"],
        owner: "sweep",
        meaning: "Keep sweeps in this local directory instead (for `dev` and tests).",
        default: "unset",
    },
    SettingDoc {
        keys: &["SWEEP_HELPDESK_GROUPS"],
        owner: "sweep",
        meaning: "Comma-separated group ids the helpdesk serves; each must be in the TAP policy's scope.",
        default: "none",
    },
    SettingDoc {
        keys: &["SWEEP_KEY_USER_GROUPS"],
        owner: "sweep",
        meaning: "Comma-separated group ids whose members need a backup phone or a FIDO2 key.",
        default: "none",
    },
    SettingDoc {
        keys: &["SWEEP_EXCLUDE_GROUPS"],
        owner: "sweep",
        meaning: "Comma-separated group ids whose members (directly or through nested groups) the sweep does not assess: break-glass accounts, service accounts. The service's own mailbox (`MAIL_SENDER`) is never assessed.",
        default: "none",
    },
    SettingDoc {
        keys: &["SWEEP_INCLUDE_DISABLED"],
        owner: "sweep",
        meaning: "`true`: assess disabled accounts too. By default they are counted as excluded, not at risk: nobody signs in with them.",
        default: "`false`",
    },
    SettingDoc {
        keys: &["SWEEP_REQUESTS_PER_10S"],
        owner: "sweep",
        meaning: "Pace of report reads (Graph allows 5 per 10 s per app per tenant; more only against the simulator).",
        default: "`5`",
    },
    SettingDoc {
        keys: &["SWEEP_TIME_BUDGET_SECONDS"],
        owner: "sweep",
        meaning: "Stop and save a run after this long; the next invocation resumes (keep it under `functionTimeout`).",
        default: "`540`",
    },
    SettingDoc {
        keys: &["SWEEP_MIN_INTERVAL_HOURS"],
        owner: "sweep",
        meaning: "A timer run within this many hours of the last finished run does nothing (so a frequent schedule only resumes).",
        default: "`20`",
    },
    SettingDoc {
        keys: &["SWEEP_RUN_NOW_MIN_MINUTES"],
        owner: "sweep",
        meaning: "\"Run now\" (`POST /api/sweeps`, the console) is refused with `429 sweep_too_soon` until this many minutes after the last finished run: the reports API's allowance is the tenant's, shared with the recoveries' audit-log reads.",
        default: "`15`",
    },
    SettingDoc {
        keys: &["SWEEP_NUDGE"],
        owner: "sweep",
        meaning: "Email at-risk members how to add a backup method.",
        default: "`false`",
    },
    SettingDoc {
        keys: &["SWEEP_NUDGE_MAX_PER_RUN", "SWEEP_NUDGE_PERIOD_DAYS"],
        owner: "sweep",
        meaning: "At most this many nudges per run, and one per user per period.",
        default: "`100`, `30`",
    },
    SettingDoc {
        keys: &["SWEEP_HTML_MAX_ROWS"],
        owner: "sweep",
        meaning: "At-risk users listed in the HTML report (all are in the CSV and JSON).",
        default: "`2000`",
    },
    SettingDoc {
        keys: &["MFA_RECOVERY_LOG_FORMAT"],
        owner: "telemetry",
        meaning: "`json` (one JSON object per line) or `text`.",
        default: "`json` under a Functions host, `text` otherwise",
    },
    SettingDoc {
        keys: &["RUST_LOG"],
        owner: "telemetry",
        meaning: "Log filter (`info`, `mfa_recovery=debug,info`, ...).",
        default: "`info`",
    },
];
