//! Caller authentication: who is calling, and may they do this?
//!
//! Callers present an Entra ID access token for this API (`AUTH_AUDIENCE`) issued by the
//! configured tenant. The signature is checked against the tenant's JWKS (fetched from
//! `AUTH_AUTHORITY`, cached, refetched when a token names an unknown key id), then the issuer (v1
//! or v2), audience, expiry and not-before (2 minutes of clock skew). Only RS256 is accepted, so
//! `alg: none` and HMAC-signed tokens are refused. The `roles` claim decides what the caller may
//! do.
//!
//! A refused call learns nothing: every 401 has the same body, and so does every 403; the reason
//! goes to the log (never the token).

mod jwks;
pub mod webhook;

use std::net::IpAddr;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::json;

use crate::config::AuthSettings;
pub use jwks::JwksCache;

use crate::vocab::Role;

/// An authenticated caller. Attached to every log line of the request once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// How the caller proved who it is: `token` or `webhook:<sender>`.
    pub via: String,
    /// The calling application's client id (`azp` in v2 tokens, `appid` in v1).
    pub app_id: Option<String>,
    /// The caller's object id (service principal or user).
    pub object_id: Option<String>,
    /// UPN for a user, the app's display name for an application, when the token has one.
    pub name: Option<String>,
    /// The original client address, from the front end's forwarded headers.
    pub source_ip: Option<IpAddr>,
    pub roles: Vec<String>,
    /// A person signed in (a delegated token with this API's scope), not an application.
    pub user: bool,
}

impl Caller {
    /// Whether the caller holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r == role.as_str())
    }

    /// Record the caller on the current span, so every later log line of the request carries it.
    pub(crate) fn record_on_span(&self) {
        let span = tracing::Span::current();
        span.record("caller_app", self.app_id.as_deref().unwrap_or("-"));
        span.record("caller_oid", self.object_id.as_deref().unwrap_or("-"));
        span.record("caller_name", self.name.as_deref().unwrap_or("-"));
        if let Some(ip) = self.source_ip {
            span.record("source_ip", tracing::field::display(ip));
        }
    }
}

/// Why a call was refused. Only the log sees the reason; the caller sees `status()` and a fixed body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    MissingToken,
    #[error("the token could not be read: {0}")]
    Malformed(&'static str),
    #[error("the token's algorithm {0} is not RS256")]
    WrongAlgorithm(String),
    #[error("the token names a key id the tenant does not publish")]
    UnknownKey,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the tenant's signing keys could not be fetched: {0}")]
    KeysUnavailable(String),
    #[error("the caller lacks the {0} role")]
    MissingRole(&'static str),
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingRole(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message) = if status == StatusCode::FORBIDDEN {
            ("forbidden", "The caller is not allowed to do this.")
        } else {
            (
                "unauthorized",
                "A valid Microsoft Entra ID access token for this API is required.",
            )
        };
        let mut response = (status, Json(json!({"error": {"code": code, "message": message}}))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The claims read from a caller token.
#[derive(Debug, Deserialize)]
struct Claims {
    tid: Option<String>,
    oid: Option<String>,
    azp: Option<String>,
    appid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    upn: Option<String>,
    preferred_username: Option<String>,
    app_displayname: Option<String>,
    /// Delegated tokens: the scopes granted, space-separated.
    scp: Option<String>,
    /// `user` or `app` (optional claim).
    idtyp: Option<String>,
}

/// Checks caller tokens for one tenant and audience.
pub struct Authenticator {
    /// `None` on the command line without `AUTH_TENANT_ID`: every token is refused.
    tenant_id: Option<String>,
    validation: Validation,
    keys: JwksCache,
    allowed_client_apps: Vec<uuid::Uuid>,
    scope: String,
}

/// Allowed clock skew on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 120;

impl Authenticator {
    pub fn new(settings: &AuthSettings, http: reqwest::Client) -> Authenticator {
        let authority = settings.authority.as_str().trim_end_matches('/');
        // Without a tenant (the command line), no issuer matches and every token is refused below.
        let tenant = settings
            .tenant_id
            .map_or_else(|| "no-tenant-configured".to_owned(), |t| t.to_string());
        let mut validation = Validation::new(Algorithm::RS256);
        // The App ID URI (v1 tokens) and the client id (v2 tokens).
        validation.set_audience(&settings.audiences);
        // v1 tokens (`https://sts.windows.net/{tid}/`) and v2 tokens (`{authority}/{tid}/v2.0`).
        validation.set_issuer(&[
            format!("https://sts.windows.net/{tenant}/"),
            format!("{authority}/{tenant}/v2.0"),
        ]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let jwks_url = format!("{authority}/{tenant}/discovery/v2.0/keys");
        Authenticator {
            tenant_id: settings.tenant_id.map(|_| tenant),
            validation,
            keys: JwksCache::new(http, jwks_url),
            allowed_client_apps: settings.allowed_client_apps.clone(),
            scope: settings.scope.clone(),
        }
    }

    /// Authenticate the bearer token in `headers` and require `role`.
    ///
    /// # Errors
    /// `AuthError` with the reason; its response is the same for every reason of one status.
    pub async fn authorize(&self, headers: &HeaderMap, role: Role) -> Result<Caller, AuthError> {
        let caller = self.authenticate(headers).await?;
        caller.record_on_span();
        if !caller.has(role) {
            return Err(AuthError::MissingRole(role.as_str()));
        }
        Ok(caller)
    }

    /// Authenticate the bearer token in `headers`, without checking a role.
    ///
    /// # Errors
    /// `AuthError` with the reason.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let token = bearer(headers).ok_or(AuthError::MissingToken)?;
        let Some(tenant_id) = &self.tenant_id else {
            return Err(AuthError::Invalid(
                "no AUTH_TENANT_ID: this process accepts no tokens".into(),
            ));
        };
        // The decoder's message could quote attacker-chosen header text: only a fixed reason is kept.
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed("not a JWT with a readable header"))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::WrongAlgorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(AuthError::Malformed("no kid"))?;
        let key = self.keys.key(&kid).await?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map_err(|e| AuthError::Invalid(format!("{:?}", e.kind())))?;
        let claims = data.claims;
        if claims.tid.as_deref() != Some(tenant_id.as_str()) {
            return Err(AuthError::Invalid("tid is not the configured tenant".into()));
        }
        let client = claims.azp.as_deref().or(claims.appid.as_deref());
        if !self.allowed_client_apps.is_empty()
            && !client
                .and_then(|c| uuid::Uuid::parse_str(c).ok())
                .is_some_and(|c| self.allowed_client_apps.contains(&c))
        {
            return Err(AuthError::Invalid(
                "the client application is not in AUTH_ALLOWED_CLIENT_APPS".into(),
            ));
        }
        // A delegated (user) token must carry this API's scope: Entra always sets `scp` on one, so
        // a user token without it was not issued for this API's delegated use.
        let delegated = claims.scp.is_some()
            || claims.idtyp.as_deref() == Some("user")
            || claims.upn.is_some()
            || claims.preferred_username.is_some();
        if delegated
            && !claims
                .scp
                .as_deref()
                .is_some_and(|scp| scp.split(' ').any(|s| s == self.scope))
        {
            return Err(AuthError::Invalid(format!(
                "a delegated token without the {} scope",
                self.scope
            )));
        }
        Ok(Caller {
            via: "token".into(),
            app_id: claims.azp.or(claims.appid),
            object_id: claims.oid,
            name: claims.upn.or(claims.preferred_username).or(claims.app_displayname),
            source_ip: source_ip(headers),
            roles: claims.roles,
            user: delegated,
        })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The client address the Functions front end saw: the **last** `X-Forwarded-For` entry (the
/// platform's front end appends the address that connected to it, `45.30.94.9:41710` in a real
/// host's capture; anything before it came from the client and proves nothing), else
/// `CLIENT-IP`; ports are dropped.
pub fn source_ip(headers: &HeaderMap) -> Option<IpAddr> {
    let parse = |raw: &str| -> Option<IpAddr> {
        let raw = raw.trim();
        raw.parse::<IpAddr>()
            .ok()
            .or_else(|| raw.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
            .or_else(|| raw.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok()))
    };
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(parse)
        .or_else(|| headers.get("client-ip").and_then(|v| v.to_str().ok()).and_then(parse))
}

impl From<&Caller> for crate::vocab::CallerRecord {
    fn from(c: &Caller) -> Self {
        crate::vocab::CallerRecord {
            via: c.via.clone(),
            app_id: c.app_id.clone(),
            object_id: c.object_id.clone(),
            name: c.name.clone(),
            source_ip: c.source_ip.map(|i| i.to_string()),
            user: c.user,
            on_behalf_of: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn source_ip_comes_from_the_front_ends_forwarded_headers() {
        let ip = |pairs: &[(&str, &str)]| source_ip(&headers(pairs)).map(|i| i.to_string());
        assert_eq!(
            ip(&[("x-forwarded-for", "45.30.94.9:41710")]).as_deref(),
            Some("45.30.94.9")
        );
        // A client that sends its own X-Forwarded-For only adds entries before the platform's.
        assert_eq!(
            ip(&[("x-forwarded-for", "6.6.6.6, 45.30.94.9:41710")]).as_deref(),
            Some("45.30.94.9")
        );
        assert_eq!(
            ip(&[("client-ip", "10.0.128.35:48692")]).as_deref(),
            Some("10.0.128.35")
        );
        assert_eq!(
            ip(&[("x-forwarded-for", "[2001:db8::1]:443")]).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(ip(&[("x-forwarded-for", "not an ip")]), None);
    }

    #[test]
    fn only_bearer_authorization_is_read() {
        assert_eq!(bearer(&headers(&[("authorization", "Bearer abc")])), Some("abc"));
        assert_eq!(bearer(&headers(&[("authorization", "bearer abc")])), Some("abc"));
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer ")])), None);
    }
}
