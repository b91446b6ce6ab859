//! The API's app roles: what a caller may ask for.

/// App roles of the API's app registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Issue a Temporary Access Pass.
    Tap,
    /// Require re-registration of MFA.
    Reset,
    /// Submit and read asynchronous requests.
    Request,
    /// Read the audit trail and sweep reports.
    AuditRead,
    /// Approve or deny recoveries that wait for a second person.
    Approve,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Tap, Role::Reset, Role::Request, Role::AuditRead, Role::Approve];

    /// The role's value in the token's `roles` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Tap => "Recovery.Tap",
            Role::Reset => "Recovery.Reset",
            Role::Request => "Recovery.Request",
            Role::AuditRead => "Audit.Read",
            Role::Approve => "Recovery.Approve",
        }
    }

    /// The role named `value` in a token's `roles` claim or a setting.
    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }
}
