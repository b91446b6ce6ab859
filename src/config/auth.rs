//! Who may call: the tenant, the audiences, the client apps, the scope; the signed webhook senders.

#[allow(unused_imports)]
use super::*;

/// Who may call the API: the Entra tenant, the API's audience, and the login endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// `AUTH_TENANT_ID`; always set when serving. The command line accepts no tokens and may run
    /// without it (`None`: every token is refused).
    pub tenant_id: Option<Uuid>,
    /// `AUTH_AUDIENCE`: the API's App ID URI (the first of its comma-separated list); the name the
    /// API's service principal is found by (the privilege check protects holders of its app
    /// roles). Always set when serving; a command-line `tap`, `reset` or `verify` needs it too.
    pub audience: Option<String>,
    /// Every accepted `aud`: the `AUTH_AUDIENCE` list and `AUTH_CLIENT_ID` (Entra puts the client
    /// id in v2 tokens, the App ID URI in v1 tokens).
    pub audiences: Vec<String>,
    /// `AUTH_CLIENT_ID`: the API's application (client) id; the console signs in with it.
    pub client_id: Option<Uuid>,
    pub authority: Url,
    /// `AUTH_ALLOWED_CLIENT_APPS`: when set, only tokens obtained by these client applications
    /// (`azp` or `appid`) are accepted.
    pub allowed_client_apps: Vec<Uuid>,
    /// `AUTH_SCOPE`: the scope a delegated (user) token must carry in `scp` (default
    /// `user_impersonation`, the one the templates expose).
    pub scope: String,
}

/// How a webhook sender signs its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum WebhookScheme {
    /// https://www.standardwebhooks.com: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    #[serde(rename = "standard-webhooks")]
    StandardWebhooks,
    /// Jira: `X-Hub-Signature: sha256=<hex>` over the body.
    #[serde(rename = "jira")]
    Jira,
}

/// A system that calls with a signed webhook instead of a token (`WEBHOOK_SENDERS`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSender {
    /// A short name, recorded as the caller (`servicenow`, `jira`).
    pub name: String,
    pub scheme: WebhookScheme,
    /// Names of Key Vault secrets holding its signing secrets; two during a rotation.
    pub secrets: Vec<String>,
    /// App roles the sender may use (`Recovery.Request`).
    pub roles: Vec<String>,
}

/// Who may call: the tenant, the audiences, the allowed client apps, the scope, the authority.
/// `serving`: the API accepts tokens, so the tenant and the audience are required; the command
/// line accepts none and reads them only when present.
pub(super) fn auth_settings<'a>(get: Get<'a, '_>, serving: bool) -> Result<AuthSettings, ConfigError> {
    let tenant_id = match get("AUTH_TENANT_ID") {
        Some(v) => Some(guid("AUTH_TENANT_ID", v)?),
        None if serving => {
            return Err(ConfigError::new(
                "AUTH_TENANT_ID",
                "is required: the Entra tenant id (a GUID) whose callers may use the API",
            ));
        }
        None => None,
    };
    let required = || {
        ConfigError::new(
            "AUTH_AUDIENCE",
            "is required: the App ID URI or client id of this API's app registration",
        )
    };
    let mut audiences: Vec<String> = get("AUTH_AUDIENCE")
        .unwrap_or_default()
        .split(',')
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    let audience = audiences.first().cloned();
    if serving && audience.is_none() {
        return Err(required());
    }
    let client_id = get("AUTH_CLIENT_ID").map(|c| guid("AUTH_CLIENT_ID", c)).transpose()?;
    if let Some(client_id) = client_id {
        audiences.push(client_id.to_string());
    }
    let allowed_client_apps = guid_list("AUTH_ALLOWED_CLIENT_APPS", get("AUTH_ALLOWED_CLIENT_APPS"))?;
    let scope = get("AUTH_SCOPE").unwrap_or("user_impersonation").to_owned();
    if scope.contains(char::is_whitespace) {
        return Err(ConfigError::new("AUTH_SCOPE", "is one scope name, without spaces"));
    }
    let authority = endpoint("AUTH_AUTHORITY", get("AUTH_AUTHORITY").unwrap_or(DEFAULT_AUTHORITY))?;
    Ok(AuthSettings {
        tenant_id,
        audience,
        audiences,
        client_id,
        authority,
        allowed_client_apps,
        scope,
    })
}

pub(super) fn webhook_senders(value: Option<&str>) -> Result<Vec<WebhookSender>, ConfigError> {
    const KEY: &str = "WEBHOOK_SENDERS";
    let Some(value) = value else { return Ok(Vec::new()) };
    let senders: Vec<WebhookSender> = serde_json::from_str(value).map_err(|e| {
        ConfigError::new(
            KEY,
            format!("is not a JSON list of {{name, scheme, secrets, roles}} ({e})"),
        )
    })?;
    let mut names = std::collections::HashSet::new();
    for s in &senders {
        let name_ok = !s.name.is_empty()
            && s.name.len() <= 32
            && s.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok || !names.insert(s.name.clone()) {
            return Err(ConfigError::new(
                KEY,
                format!("sender name '{}' must be unique, 1-32 of a-z, 0-9 and -", s.name),
            ));
        }
        if !(1..=3).contains(&s.secrets.len()) {
            return Err(ConfigError::new(
                KEY,
                format!("sender '{}' needs 1 to 3 Key Vault secret names", s.name),
            ));
        }
        if let Some(role) = s.roles.iter().find(|r| crate::vocab::Role::parse(r).is_none()) {
            return Err(ConfigError::new(
                KEY,
                format!("sender '{}' has unknown role '{role}'", s.name),
            ));
        }
    }
    Ok(senders)
}
