//! What `POST /api/requests` accepts: our own JSON, a ServiceNow payload or a Jira payload, each
//! turned into the body the synchronous `tap` or `reset` function takes and validated with the
//! same parsers before anything is stored or queued.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::{FieldMap, IntakeSettings, TapSettings};
use crate::recovery::RecoveryError;
use crate::recovery::admit::check_verification;
use crate::recovery::details::Details;
use crate::recovery::request::TapRequest;
use crate::recovery::reset::ResetRequest;
use crate::vocab::Refusal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "tap")]
    Tap,
    #[serde(rename = "reset")]
    Reset,
    #[serde(rename = "reset+tap")]
    ResetTap,
}

impl Action {
    pub fn parse(value: &str) -> Option<Action> {
        match value.trim().to_ascii_lowercase().as_str() {
            "tap" => Some(Action::Tap),
            "reset" => Some(Action::Reset),
            "reset+tap" | "reset_tap" | "reset-tap" => Some(Action::ResetTap),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Tap => "tap",
            Action::Reset => "reset",
            Action::ResetTap => "reset+tap",
        }
    }
}

/// Where a request came from, and where its result goes back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// `api`, `servicenow` or `jira`.
    pub system: String,
    /// The ticket as people know it (`INC0010001`, `HELP-42`).
    pub ticket: String,
    /// ServiceNow's record `sys_id` (the Table API needs it to write back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sys_id: Option<String>,
    /// A callback URL (our own JSON), signed with Standard Webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The sender's delivery id, when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

/// A validated request, ready to be stored.
#[derive(Debug, Clone)]
pub struct Submission {
    pub action: Action,
    pub user: String,
    /// The body of the synchronous function (`tap` or `reset`).
    pub body: Value,
    pub source: Source,
    pub idempotency_key: String,
    /// A digest of what is asked, to tell a duplicate from a different request under the same key.
    pub fingerprint: String,
    /// The agent the payload names as asking (`requestedBy`; ServiceNow `assigned_to`, Jira
    /// `assignee` by default), as given: a UPN, an email or an object id, resolved later.
    pub requested_by: Option<String>,
    /// `"verification": {"mode": "link", "channel"}`: the service sends the user a confirmation
    /// link on this channel, and the request waits for their answer.
    pub link: Option<crate::vocab::Channel>,
}

/// What the HTTP layer knows besides the body.
#[derive(Debug, Default)]
pub struct Envelope<'a> {
    pub delivery_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    /// Who is asking (`webhook:jira`, a token's object id): scopes an `Idempotency-Key`.
    pub caller: &'a str,
}

fn bad(code: Refusal, message: impl Into<String>) -> RecoveryError {
    RecoveryError::refused(code, message)
}

/// Parse and validate; every problem is a 400 (or 422) the sender can act on, and nothing is kept.
///
/// # Errors
/// What is wrong, in the words of the synchronous functions where they apply.
pub fn parse(
    body: &[u8],
    envelope: &Envelope<'_>,
    intake: &IntakeSettings,
    tap: &TapSettings,
) -> Result<Submission, RecoveryError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| bad(Refusal::InvalidRequest, "the body is not valid JSON"))?;
    let Value::Object(object) = value else {
        return Err(bad(Refusal::InvalidRequest, "the body must be a JSON object"));
    };
    let (requested_by, (action, user, inner, source)) = by_format(object, intake)?;
    let source = Source {
        delivery_id: envelope.delivery_id.map(str::to_owned),
        ..source
    };
    // The same parsers as the synchronous functions.
    let bytes = inner.to_string();
    let verification = match action {
        Action::Tap => TapRequest::parse(&user, bytes.as_bytes())?.verification,
        Action::Reset | Action::ResetTap => {
            let reset = ResetRequest::parse(&user, bytes.as_bytes())?;
            match (action, reset.tap.is_some()) {
                (Action::ResetTap, false) => {
                    return Err(bad(
                        Refusal::InvalidRequest,
                        "reset+tap needs tap: {delivery: {channel}} (or the channel field of the ticket)",
                    ));
                }
                (Action::Reset, true) => {
                    return Err(bad(
                        Refusal::InvalidRequest,
                        "a reset with a pass is the action reset+tap",
                    ));
                }
                _ => reset.verification,
            }
        }
    };
    check_verification(tap, verification.as_ref(), None, &mut Details::default())?;
    let link = match &verification {
        Some(crate::recovery::request::VerificationBody::Link(l)) => Some(l.channel()?),
        _ => None,
    };
    let idempotency_key = match envelope.idempotency_key {
        Some(key) if crate::recovery::text_ok(key, 200) => format!("key:{}:{key}", envelope.caller),
        Some(_) => {
            return Err(bad(
                Refusal::InvalidRequest,
                "Idempotency-Key must be 1 to 200 printable characters",
            ));
        }
        // Scoped to the caller or sender, so nobody can pre-empt another's ticket number.
        None => format!(
            "ticket:{}:{}:{}:{}",
            envelope.caller,
            source.system.to_ascii_lowercase(),
            source.ticket,
            action.as_str()
        ),
    };
    // What is asked, not when it was verified: a resend with a fresher verification is the same request.
    let mut asked = inner.clone();
    if let Some(o) = asked.as_object_mut() {
        o.remove("verification");
    }
    let fingerprint =
        hex::encode(&Sha256::digest(json!([action, user.to_ascii_lowercase(), asked]).to_string().as_bytes())[..16]);
    Ok(Submission {
        action,
        user,
        body: inner,
        source,
        idempotency_key,
        fingerprint,
        requested_by,
        link,
    })
}

/// The payload by its format (ServiceNow, Jira, or our own JSON), and the agent it names as
/// asking.
fn by_format(object: Map<String, Value>, intake: &IntakeSettings) -> Result<(Option<String>, Parsed), RecoveryError> {
    let (requested_by, parsed) = if object.contains_key("sys_id") && object.contains_key("number") {
        (
            named(&object, &intake.servicenow_fields),
            servicenow(&object, &intake.servicenow_fields)?,
        )
    } else if let Some(issue) = jira_issue(&object) {
        (named(issue, &intake.jira_fields), jira(issue, &intake.jira_fields)?)
    } else {
        let mut object = object;
        let named = match object.remove("requestedBy") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                return Err(bad(
                    Refusal::InvalidRequest,
                    "requestedBy must be the asking agent's UPN, email or object id",
                ));
            }
        };
        (named, own(object, intake)?)
    };
    let requested_by = match requested_by.map(|r| r.trim().to_owned()) {
        Some(r) if r.is_empty() => None,
        Some(r) if !crate::recovery::text_ok(&r, 256) || r.contains(char::is_whitespace) => {
            return Err(bad(
                Refusal::InvalidRequest,
                "requestedBy (the asking agent) must be one UPN, email or object id, up to 256 characters",
            ));
        }
        other => other,
    };
    Ok((requested_by, parsed))
}

/// The agent a ticket names as asking (`requestedBy` in the field map).
fn named(object: &Map<String, Value>, map: &FieldMap) -> Option<String> {
    map.get("requestedBy").and_then(|path| field(object, path))
}

type Parsed = (Action, String, Value, Source);

/// `{action, user, callbackUrl?, ...the tap or reset body}`.
fn own(mut object: Map<String, Value>, intake: &IntakeSettings) -> Result<Parsed, RecoveryError> {
    let expected = "{action: \"tap\" | \"reset\" | \"reset+tap\", user, ...the tap or reset body}";
    let action = object
        .remove("action")
        .and_then(|a| a.as_str().and_then(Action::parse))
        .ok_or_else(|| {
            bad(
                Refusal::InvalidRequest,
                format!("action is required. Expected {expected}"),
            )
        })?;
    let user = match object.remove("user") {
        Some(Value::String(u)) if !u.trim().is_empty() => u,
        _ => {
            return Err(bad(
                Refusal::InvalidRequest,
                format!("user is required. Expected {expected}"),
            ));
        }
    };
    let callback_url = match object.remove("callbackUrl") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => Some(check_callback(&url, intake)?),
        Some(_) => return Err(bad(Refusal::InvalidRequest, "callbackUrl must be a URL")),
    };
    let ticket = object
        .get("ticket")
        .and_then(|t| Some((t.get("system")?.as_str()?.to_owned(), t.get("id")?.as_str()?.to_owned())));
    let (system, ticket) = ticket.unwrap_or_else(|| ("api".into(), String::new()));
    Ok((
        action,
        user,
        Value::Object(object),
        Source {
            system,
            ticket,
            sys_id: None,
            callback_url,
            delivery_id: None,
        },
    ))
}

/// A callback goes only to an allowed host over https (no request can point us at an internal
/// address).
fn check_callback(url: &str, intake: &IntakeSettings) -> Result<String, RecoveryError> {
    let parsed =
        url::Url::parse(url).map_err(|_| bad(Refusal::InvalidRequest, "callbackUrl is not an absolute URL"))?;
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost");
    let scheme_ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback);
    if !scheme_ok || !intake.callback_hosts.contains(&host) {
        return Err(bad(
            Refusal::CallbackNotAllowed,
            "callbackUrl must be https and its host listed in CALLBACK_ALLOWED_HOSTS",
        ));
    }
    if intake.callback_secret.is_none() {
        return Err(bad(
            Refusal::CallbackNotAllowed,
            "callbacks are not configured (CALLBACK_SIGNING_SECRET)",
        ));
    }
    Ok(parsed.to_string())
}

/// A value at a dotted path, as text: strings as they are, numbers printed, and the usual shapes
/// of ITSM references (`{value}`, `{display_value}`, `{emailAddress}`, `{name}`). `=text` is a
/// constant.
fn field(object: &Map<String, Value>, path: &str) -> Option<String> {
    if let Some(constant) = path.strip_prefix('=') {
        return Some(constant.to_owned());
    }
    let mut current = object.get(path.split('.').next()?)?;
    for part in path.split('.').skip(1) {
        current = match current {
            Value::Array(items) => items.first()?.get(part)?,
            other => other.get(part)?,
        };
    }
    let text = match current {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => return items.first().and_then(text_of),
        other => return text_of(other),
    };
    Some(text).filter(|t| !t.trim().is_empty())
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => ["value", "display_value", "emailAddress", "email", "name"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_owned)),
        _ => None,
    }
    .filter(|t| !t.trim().is_empty())
}

/// The tap/reset body from mapped ticket fields.
fn from_fields(
    object: &Map<String, Value>,
    map: &FieldMap,
    system: &str,
    ticket: &str,
    ticket_url: Option<String>,
) -> Result<(Action, String, Value), RecoveryError> {
    let get = |name: &str| map.get(name).and_then(|path| field(object, path));
    let missing = |name: &str| {
        bad(
            Refusal::InvalidRequest,
            format!(
                "the {system} payload has no {name} (field '{}'; map it in {}_FIELDS)",
                map.get(name).map_or("", String::as_str),
                system.to_ascii_uppercase()
            ),
        )
    };
    let action_text = get("action").ok_or_else(|| missing("action"))?;
    let action = Action::parse(&action_text).ok_or_else(|| {
        bad(
            Refusal::InvalidRequest,
            format!("the {system} action must be tap, reset or reset+tap"),
        )
    })?;
    let user = get("user").ok_or_else(|| missing("user"))?;
    let reason = get("reason").unwrap_or_else(|| format!("{system} {ticket}"));
    let mut ticket_json = json!({"system": system, "id": ticket});
    if let Some(url) = ticket_url {
        ticket_json["url"] = json!(url);
    }
    let mut body = json!({"ticket": ticket_json, "reason": reason});
    if let Some(id) = get("verificationId") {
        // A verification the service made (the agent's form sent the code and confirmed it).
        body["verification"] = json!({"id": id.trim()});
    } else if let Some(channel) = get("verificationLink") {
        // The service sends the user a confirmation link; the request waits for the answer.
        body["verification"] = json!({"mode": "link", "channel": channel.trim()});
    } else if let (Some(method), Some(by), Some(at)) = (get("verificationMethod"), get("verifiedBy"), get("verifiedAt"))
    {
        body["verification"] = json!({"method": method, "verifiedBy": by, "verifiedAt": at});
    }
    let lifetime = match get("lifetimeMinutes") {
        None => None,
        Some(v) => Some(v.trim().parse::<u32>().map_err(|_| {
            bad(
                Refusal::InvalidRequest,
                format!("the {system} lifetime '{v}' is not a number of minutes"),
            )
        })?),
    };
    let mut tap = json!({"delivery": {"channel": get("channel").unwrap_or_else(|| "sms".into()).to_ascii_lowercase()}});
    if let Some(l) = lifetime {
        tap["lifetimeMinutes"] = json!(l);
    }
    match action {
        Action::Tap => {
            body["delivery"] = tap["delivery"].take();
            if let Some(l) = lifetime {
                body["lifetimeMinutes"] = json!(l);
            }
        }
        Action::Reset | Action::ResetTap => {
            if let Some(scope) = get("scope") {
                body["scope"] = json!(scope.to_ascii_lowercase());
            }
            if action == Action::ResetTap {
                body["tap"] = tap;
            }
        }
    }
    Ok((action, user, body))
}

/// A ServiceNow REST message: the record's `sys_id` and `number` and the mapped fields.
fn servicenow(object: &Map<String, Value>, map: &FieldMap) -> Result<Parsed, RecoveryError> {
    let text = |k: &str| object.get(k).and_then(text_of);
    let sys_id = text("sys_id").filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    let sys_id = sys_id.ok_or_else(|| {
        bad(
            Refusal::InvalidRequest,
            "sys_id must be the record's 32-character sys_id",
        )
    })?;
    let number = text("number")
        .filter(|n| crate::recovery::text_ok(n, 64))
        .ok_or_else(|| bad(Refusal::InvalidRequest, "number (the ticket number) is required"))?;
    let (action, user, body) = from_fields(object, map, "servicenow", &number, None)?;
    Ok((
        action,
        user,
        body,
        Source {
            system: "servicenow".into(),
            ticket: number,
            sys_id: Some(sys_id),
            callback_url: None,
            delivery_id: None,
        },
    ))
}

/// Jira's issue: `{issue: {key, fields}}` (webhooks, "Issue data (Jira format)") or the issue at
/// the top level (`{key, fields}`).
fn jira_issue(object: &Map<String, Value>) -> Option<&Map<String, Value>> {
    if let Some(Value::Object(issue)) = object.get("issue")
        && issue.contains_key("key")
    {
        return Some(issue);
    }
    (object.contains_key("key") && object.contains_key("fields")).then_some(object)
}

fn jira(issue: &Map<String, Value>, map: &FieldMap) -> Result<Parsed, RecoveryError> {
    let key = issue
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| crate::recovery::text_ok(k, 64))
        .ok_or_else(|| bad(Refusal::InvalidRequest, "issue.key is required"))?
        .to_owned();
    let url = issue.get("self").and_then(Value::as_str).map(str::to_owned);
    let (action, user, body) = from_fields(issue, map, "jira", &key, url)?;
    Ok((
        action,
        user,
        body,
        Source {
            system: "jira".into(),
            ticket: key,
            sys_id: None,
            callback_url: None,
            delivery_id: None,
        },
    ))
}

/// When this is about: now, for records.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_paths_and_reference_shapes() {
        let o: Map<String, Value> = serde_json::from_value(json!({
            "caller_id": {"value": "abc", "display_value": "Adele"},
            "fields": {"customfield_1": {"value": "tap"}, "assignee": {"emailAddress": "a@b"}, "list": [{"value": "x"}]},
            "n": 5
        }))
        .unwrap();
        assert_eq!(field(&o, "caller_id").as_deref(), Some("abc"));
        assert_eq!(field(&o, "caller_id.display_value").as_deref(), Some("Adele"));
        assert_eq!(field(&o, "fields.customfield_1").as_deref(), Some("tap"));
        assert_eq!(field(&o, "fields.assignee").as_deref(), Some("a@b"));
        assert_eq!(field(&o, "fields.list").as_deref(), Some("x"));
        assert_eq!(field(&o, "n").as_deref(), Some("5"));
        assert_eq!(field(&o, "=sms").as_deref(), Some("sms"));
        assert_eq!(field(&o, "missing.path"), None);
    }
}
