//! The Graph shapes the function set reads, typed at the edge.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user named by object id or UPN, as `{user}` in the routes. Parsed once, at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(Uuid),
    Upn(String),
}

impl UserRef {
    /// Parse an object id (GUID) or a UPN (`local@domain`, no spaces or slashes).
    ///
    /// # Errors
    /// Neither form.
    pub fn parse(value: &str) -> Result<UserRef, String> {
        if let Ok(id) = Uuid::parse_str(value) {
            return Ok(UserRef::Id(id));
        }
        let valid_upn = value.len() <= 113
            && value
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
            && !value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '\\');
        if valid_upn {
            Ok(UserRef::Upn(value.to_owned()))
        } else {
            Err(format!(
                "'{value}' is neither an object id (GUID) nor a user principal name"
            ))
        }
    }

    /// The path segment (percent-encoded by `GraphClient::url`).
    pub fn segment(&self) -> String {
        match self {
            UserRef::Id(id) => id.to_string(),
            UserRef::Upn(upn) => upn.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manager {
    pub id: String,
    pub display_name: Option<String>,
    pub mail: Option<String>,
}

/// `GET /users/{id}` with the fields recovery needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub display_name: Option<String>,
    pub user_principal_name: String,
    pub mail: Option<String>,
    #[serde(default)]
    pub other_mails: Vec<String>,
    pub mobile_phone: Option<String>,
    pub account_enabled: Option<bool>,
    pub user_type: Option<String>,
    pub manager: Option<Manager>,
}

impl User {
    /// The `$select` and `$expand` that fill this type.
    pub(crate) const SELECT: &'static str =
        "id,displayName,userPrincipalName,mail,otherMails,mobilePhone,accountEnabled,userType";
    pub(crate) const EXPAND: &'static str = "manager($select=id,displayName,mail)";

    pub fn is_member(&self) -> bool {
        !self
            .user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
    }
}

/// An item of `transitiveMemberOf`: a group or a directory role (administrative units too).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    pub id: String,
    pub display_name: Option<String>,
    pub role_template_id: Option<String>,
    /// Groups only: whether directory roles can be assigned to it (returned by default on groups).
    #[serde(default)]
    pub is_assignable_to_role: Option<bool>,
}

/// A directory role assignment or eligibility as PIM lists it
/// (`roleAssignmentScheduleInstances`, `roleEligibilityScheduleInstances`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleInstance {
    pub principal_id: String,
    pub role_definition_id: String,
    /// `/` for the tenant, `/administrativeUnits/{id}` for an administrative unit, or an object.
    #[serde(default)]
    pub directory_scope_id: Option<String>,
    /// Set when the role is scoped to an application.
    #[serde(default)]
    pub app_scope_id: Option<String>,
}

/// A PIM for Groups eligibility (`privilegedAccess/group/eligibilityScheduleInstances`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupEligibility {
    pub principal_id: String,
    pub group_id: String,
    /// `member` or `owner`.
    pub access_id: String,
}

/// One holder of one of an app's roles (`servicePrincipals/{id}/appRoleAssignedTo`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    pub principal_id: String,
    #[serde(default)]
    pub principal_type: Option<String>,
    pub app_role_id: String,
}

/// An app role assignment read from the principal's side: which resource (service principal)
/// the role is of.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignmentOf {
    pub principal_id: String,
    #[serde(default)]
    pub principal_type: Option<String>,
    pub app_role_id: String,
    pub resource_id: String,
}

impl DirectoryObject {
    pub fn is_role(&self) -> bool {
        self.odata_type == "#microsoft.graph.directoryRole"
    }
    pub fn is_group(&self) -> bool {
        self.odata_type == "#microsoft.graph.group"
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTarget {
    pub id: String,
    #[serde(default)]
    pub target_type: Option<String>,
}

/// The tenant's Temporary Access Pass policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapPolicy {
    pub state: String,
    #[serde(default)]
    pub include_targets: Vec<PolicyTarget>,
    #[serde(default)]
    pub exclude_targets: Vec<PolicyTarget>,
    pub default_lifetime_in_minutes: u32,
    pub minimum_lifetime_in_minutes: u32,
    pub maximum_lifetime_in_minutes: u32,
    #[serde(default)]
    pub is_usable_once: bool,
}

impl TapPolicy {
    pub fn is_enabled(&self) -> bool {
        self.state.eq_ignore_ascii_case("enabled")
    }
}

/// A TAP method as listed (the pass is never in a list).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapMethod {
    pub id: String,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub created_date_time: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub start_date_time: Option<time::OffsetDateTime>,
    pub lifetime_in_minutes: Option<u32>,
    pub is_usable_once: Option<bool>,
}

/// A pass just created. Only the create response holds the pass; it lives here, in a
/// `SecretString` (whose `Debug` prints a placeholder), until it is delivered.
#[derive(Debug)]
pub struct CreatedTap {
    pub method: TapMethod,
    pub pass: SecretString,
}

/// The kinds of authentication method Graph lists (`#microsoft.graph.{kind}AuthenticationMethod`).
/// https://learn.microsoft.com/graph/api/resources/authenticationmethods-overview
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    Password,
    Phone,
    Email,
    MicrosoftAuthenticator,
    SoftwareOath,
    HardwareOath,
    Fido2,
    WindowsHelloForBusiness,
    PlatformCredential,
    TemporaryAccessPass,
    External,
    QrCodePin,
    /// A kind this service does not know (a newer one): listed, never removed.
    Other,
}

impl MethodKind {
    /// The kind from its type name (`phone`, `fido2`, ...).
    pub fn parse(name: &str) -> MethodKind {
        match name {
            "password" => MethodKind::Password,
            "phone" => MethodKind::Phone,
            "email" => MethodKind::Email,
            "microsoftAuthenticator" => MethodKind::MicrosoftAuthenticator,
            "softwareOath" => MethodKind::SoftwareOath,
            "hardwareOath" => MethodKind::HardwareOath,
            "fido2" => MethodKind::Fido2,
            "windowsHelloForBusiness" => MethodKind::WindowsHelloForBusiness,
            "platformCredential" => MethodKind::PlatformCredential,
            "temporaryAccessPass" => MethodKind::TemporaryAccessPass,
            "external" => MethodKind::External,
            "qrCodePin" => MethodKind::QrCodePin,
            _ => MethodKind::Other,
        }
    }
}

/// One registered authentication method, as `GET /beta/users/{id}/authentication/methods` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthMethod {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    pub id: String,
    pub display_name: Option<String>,
    pub phone_type: Option<String>,
    pub phone_number: Option<String>,
    pub email_address: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub status: Option<String>,
    /// When it was registered, for the types Graph reports it for (not phones and emails).
    #[serde(default)]
    pub created_date_time: Option<String>,
}

impl AuthMethod {
    /// The type without its namespace: `phoneAuthenticationMethod` -> `phone` (as records and
    /// answers show it).
    pub(crate) fn type_name(&self) -> &str {
        self.odata_type
            .trim_start_matches("#microsoft.graph.")
            .trim_end_matches("AuthenticationMethod")
    }

    pub fn kind(&self) -> MethodKind {
        MethodKind::parse(self.type_name())
    }

    /// A registered mobile phone (what SMS goes to).
    pub(crate) fn is_mobile_phone(&self) -> bool {
        self.kind() == MethodKind::Phone && self.phone_type.as_deref() == Some("mobile")
    }

    /// A label for records and answers; phone numbers and addresses masked.
    pub fn label(&self) -> String {
        match self.kind() {
            MethodKind::Phone => format!(
                "{} {}",
                self.phone_type.as_deref().unwrap_or("phone"),
                self.phone_number
                    .as_deref()
                    .map(crate::vocab::mask_phone)
                    .unwrap_or_default()
            ),
            MethodKind::Email => self
                .email_address
                .as_deref()
                .map(crate::vocab::mask_email)
                .unwrap_or_default(),
            MethodKind::HardwareOath => self
                .serial_number
                .clone()
                .or(self.display_name.clone())
                .unwrap_or_default(),
            _ => self.display_name.clone().or(self.model.clone()).unwrap_or_default(),
        }
    }
}

/// A user as Entra ID Protection rates them.
/// https://learn.microsoft.com/graph/api/resources/riskyuser
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RiskyUser {
    /// `low`, `medium`, `high`, `hidden`, `none` (or a value Graph adds later).
    #[serde(default)]
    pub risk_level: Option<String>,
    /// `none`, `confirmedSafe`, `remediated`, `dismissed`, `atRisk`, `confirmedCompromised`, ...
    #[serde(default)]
    pub risk_state: Option<String>,
    #[serde(default)]
    pub risk_detail: Option<String>,
    #[serde(default)]
    pub risk_last_updated_date_time: Option<String>,
}

/// A user's id and UPN (`$select=id,userPrincipalName`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserId {
    pub id: Uuid,
    pub user_principal_name: String,
}

#[cfg(test)]
mod tests {
    use super::UserRef;

    #[test]
    fn user_refs_are_ids_or_upns() {
        assert!(matches!(
            UserRef::parse("b0000001-0000-4000-8000-000000000001"),
            Ok(UserRef::Id(_))
        ));
        assert!(matches!(
            UserRef::parse("adele.vance@contoso.test"),
            Ok(UserRef::Upn(_))
        ));
        assert!(matches!(
            UserRef::parse("pat.guest_fabrikam.example#EXT#@contoso.test"),
            Ok(UserRef::Upn(_))
        ));
        for bad in ["adele", "a b@c.d", "../x@y.z", "x@y", "@contoso.test", "a@b@c.d"] {
            assert!(UserRef::parse(bad).is_err(), "{bad}");
        }
    }
}

/// A directory audit event (`/auditLogs/directoryAudits`), as far as the stale-address check reads
/// it. Every property may be missing; a missing one reads as empty.
/// https://learn.microsoft.com/graph/api/resources/directoryaudit
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct DirectoryAudit {
    /// When it happened (RFC 3339, UTC).
    pub activity_date_time: Option<String>,
    pub activity_display_name: Option<String>,
    /// `Core Directory`, `Authentication Methods`, …
    pub logged_by_service: Option<String>,
    /// `success`, `failure`, `timeout`, `unknownFutureValue`.
    pub result: Option<String>,
    pub result_reason: Option<String>,
    pub target_resources: Vec<AuditTarget>,
}

/// An "Authentication Methods" event of the directory audit log, as an auditor reads it beside
/// this service's trail: when, what, the result, who did it (a user's UPN or an app's name).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MethodEvent {
    pub time: Option<String>,
    pub activity: Option<String>,
    pub result: Option<String>,
    pub result_reason: Option<String>,
    pub initiated_by: Option<String>,
    pub correlation_id: Option<String>,
}

/// One resource an audit event changed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct AuditTarget {
    pub modified_properties: Vec<ModifiedProperty>,
}

/// A property an audit event changed: its name, and its new value (read only for "Included
/// Updated Properties", which lists the names of the properties an "Update user" changed).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ModifiedProperty {
    pub display_name: Option<String>,
    pub new_value: Option<String>,
}
