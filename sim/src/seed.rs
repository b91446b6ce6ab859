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
    /// Whether the tenant holds Microsoft Entra ID P2 (Identity Protection's risky users need it).
    #[serde(default = "yes", rename = "entraIdP2")]
    pub entra_id_p2: bool,
    /// Whether the tenant holds Microsoft Entra ID P1 (the reports need P1 or P2).
    #[serde(default = "yes", rename = "entraIdP1")]
    pub entra_id_p1: bool,
    #[serde(default)]
    pub groups: Vec<GroupSeed>,
    /// Active, tenant-wide built-in roles (they appear in `transitiveMemberOf` as `directoryRole`).
    #[serde(default)]
    pub directory_roles: Vec<RoleSeed>,
    /// Custom role definitions (`isBuiltIn: false`); the built-in ones come from `directoryRoles`.
    #[serde(default)]
    pub role_definitions: Vec<RoleDefinitionSeed>,
    /// Role assignments the `directoryRoles` list cannot express: PIM-eligible, scoped to an
    /// administrative unit or an application, or of a custom role.
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignmentSeed>,
    /// PIM for Groups: eligible membership or ownership of a group.
    #[serde(default)]
    pub group_eligibilities: Vec<GroupEligibilitySeed>,
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
    /// The object id of the API's service principal (`servicePrincipals/{id}`).
    #[serde(default = "default_api_sp")]
    pub service_principal_id: String,
    /// Who holds the API's app roles (`servicePrincipals/{id}/appRoleAssignedTo`).
    #[serde(default)]
    pub app_role_assignments: Vec<AppRoleAssignmentSeed>,
    /// The object id of the API's application object (`applications/{id}`).
    #[serde(default = "default_api_app_object")]
    pub application_object_id: String,
    /// Owners of the API's application and service principal (they can grant themselves roles).
    #[serde(default)]
    pub owners: Vec<String>,
}

fn default_api_app_object() -> String {
    "e0000002-0000-4000-8000-0000000000a2".into()
}

fn default_api_sp() -> String {
    "e0000001-0000-4000-8000-0000000000a1".into()
}

/// One holder of one of the API's app roles.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignmentSeed {
    pub principal_id: String,
    /// `User`, `Group` or `ServicePrincipal`.
    #[serde(default = "user_type")]
    pub principal_type: String,
    #[serde(default)]
    pub principal_display_name: Option<String>,
    /// The role's value (`Recovery.Tap`).
    pub app_role: String,
}

fn user_type() -> String {
    "User".into()
}

/// A custom directory role (`unifiedRoleDefinition` with `isBuiltIn: false`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinitionSeed {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub is_built_in: bool,
}

/// A directory role assignment as PIM sees it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentSeed {
    /// A user, or a role-assignable group.
    pub principal_id: String,
    /// A built-in role's template id or a custom role's id.
    pub role_definition_id: String,
    /// `/` for the tenant, `/administrativeUnits/{id}` for an administrative unit.
    #[serde(default = "root_scope")]
    pub directory_scope_id: String,
    #[serde(default)]
    pub app_scope_id: Option<String>,
    /// `active` or `eligible`.
    #[serde(default = "active")]
    pub assignment: String,
}

fn root_scope() -> String {
    "/".into()
}
fn active() -> String {
    "active".into()
}

/// PIM for Groups: the principal may activate `accessId` (`member` or `owner`) of the group.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupEligibilitySeed {
    pub principal_id: String,
    pub group_id: String,
    #[serde(default = "member_access")]
    pub access_id: String,
}

fn member_access() -> String {
    "member".into()
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
    /// Exchange Online RBAC for Applications: the mailboxes the identity's "Application Mail.Send"
    /// role assignment covers (its management scope). Graph `sendMail` from one of them works
    /// without the tenant-wide Entra `Mail.Send`.
    #[serde(default)]
    pub exchange_mail_send: Vec<String>,
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
    /// Users (or service principals) who own the group: they can add members, themselves too.
    #[serde(default)]
    pub owners: Vec<String>,
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
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub office_location: Option<String>,
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
    /// Identity Protection's rating (`{"riskLevel", "riskState"}`); absent means no record.
    #[serde(default)]
    pub risk: Option<Value>,
    #[serde(default)]
    pub methods: Vec<Map<String, Value>>,
}

fn member() -> String {
    "Member".into()
}
