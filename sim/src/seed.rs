//! The seed file: the tenant the simulator starts from (and returns to on `POST /sim/reset`).
//!
//! The format is documented in `docs/simulator.md`. Secrets are never stored in a seed file:
//! Key Vault entries name a generator and the value is drawn at start-up.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The demo tenant shipped with the project (`sim/seed/demo-tenant.json`).
pub const DEMO_TENANT: &str = include_str!("../seed/demo-tenant.json");

/// A whole simulated tenant, as read from JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    pub tenant_id: String,
    #[serde(default = "default_domain")]
    pub domain: String,
    pub api: ApiSeed,
    pub managed_identity: ManagedIdentitySeed,
    #[serde(default)]
    pub key_vault: KeyVaultSeed,
    #[serde(default)]
    pub providers: ProvidersSeed,
    /// Page size of `reports/authenticationMethods/userRegistrationDetails`.
    #[serde(default = "default_page_size")]
    pub registration_report_page_size: usize,
    pub tap_policy: Value,
    #[serde(default)]
    pub groups: Vec<GroupSeed>,
    #[serde(default)]
    pub directory_roles: Vec<RoleSeed>,
    #[serde(default)]
    pub users: Vec<UserSeed>,
}

fn default_domain() -> String {
    "contoso.test".into()
}
fn default_page_size() -> usize {
    100
}

impl Seed {
    /// The demo tenant every `mfa-recovery dev` starts with.
    pub fn demo() -> Self {
        Self::from_json(DEMO_TENANT).expect("the bundled demo tenant is valid")
    }

    /// Parse a seed file.
    ///
    /// # Errors
    /// The JSON does not match the seed format.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The API callers get tokens for (`AUTH_AUDIENCE`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSeed {
    pub audience: String,
    pub app_id: String,
}

/// The function app's managed identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedIdentitySeed {
    pub client_id: String,
    pub object_id: String,
    /// Microsoft Graph application permissions granted to the identity; the simulated Graph
    /// answers 403 `Authorization_RequestDenied` when a call needs one that is missing.
    #[serde(default)]
    pub graph_permissions: Vec<String>,
    /// Whether the identity holds `Key Vault Secrets User` on the vault.
    #[serde(default = "yes")]
    pub key_vault_secrets_user: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVaultSeed {
    #[serde(default = "default_vault")]
    pub name: String,
    #[serde(default)]
    pub secrets: Vec<SecretSeed>,
}

fn default_vault() -> String {
    "kv-mfa-recovery".into()
}

/// A Key Vault secret. `generate` is `base64` (64 random bytes) or `hex` (32 random bytes);
/// `value` may be given instead, for tests that need a known value.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSeed {
    pub name: String,
    #[serde(default)]
    pub generate: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvidersSeed {
    #[serde(default)]
    pub acs: Option<AcsSeed>,
    #[serde(default)]
    pub twilio: Option<TwilioSeed>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcsSeed {
    pub access_key_secret: String,
    pub sms_from: String,
    pub email_from: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TwilioSeed {
    pub account_sid: String,
    pub auth_token_secret: String,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSeed {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub is_assignable_to_role: bool,
    /// User or group ids (groups nest).
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleSeed {
    pub id: String,
    pub display_name: String,
    pub role_template_id: String,
    /// User ids, or ids of role-assignable groups.
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSeed {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub other_mails: Vec<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    #[serde(default = "member")]
    pub user_type: String,
    #[serde(default)]
    pub manager_id: Option<String>,
    /// `userPreferredMethodForSecondaryAuthentication`: push, oath, sms, voiceMobile,
    /// voiceAlternateMobile, voiceOffice; absent means none.
    #[serde(default)]
    pub default_method: Option<String>,
    /// Shown by `mfa-recovery dev`; not part of the Graph user.
    #[serde(default)]
    pub demo_note: Option<String>,
    #[serde(default)]
    pub methods: Vec<Map<String, Value>>,
}

fn member() -> String {
    "Member".into()
}
