//! The API's paths, written once: the router is built from them (`host::routes`), and a view or a
//! message that names a path (a request's status URL, "send a code (POST …)") fills one of them,
//! so no path is spelled out elsewhere (the architecture test holds the domain to it).

use uuid::Uuid;

pub const TAP: &str = "/api/users/{user}/tap";
pub const RESET: &str = "/api/users/{user}/mfa/reset";
pub(crate) const VERIFICATIONS: &str = "/api/users/{user}/verifications";
pub(crate) const VERIFICATION_CONFIRM: &str = "/api/verifications/{id}/confirm";
pub(crate) const VERIFICATION: &str = "/api/verifications/{id}";
pub(crate) const CONFIRM: &str = "/api/confirm/{id}";
pub(crate) const RECOVERY_BLOCK_LIFT: &str = "/api/users/{user}/recovery-block/lift";
pub(crate) const AUDIT: &str = "/api/audit";
pub(crate) const REQUESTS: &str = "/api/requests";
pub(crate) const REQUEST: &str = "/api/requests/{id}";
pub(crate) const REQUEST_APPROVE: &str = "/api/requests/{id}/approve";
pub(crate) const REQUEST_DENY: &str = "/api/requests/{id}/deny";
pub(crate) const APPROVALS: &str = "/api/approvals";
pub(crate) const USERS: &str = "/api/users";
pub const USER: &str = "/api/users/{user}";
pub(crate) const CONSOLE: &str = "/api/console";
pub(crate) const CONSOLE_INDEX: &str = "/api/console/";
pub(crate) const CONSOLE_FILE: &str = "/api/console/{*path}";
pub(crate) const SWEEPS: &str = "/api/sweeps";
pub(crate) const SWEEP: &str = "/api/sweeps/{run}";
pub(crate) const SWEEP_FILE: &str = "/api/sweeps/{run}/{file}";
pub(crate) const HEALTH: &str = "/api/health";
pub(crate) const DOCTOR: &str = "/api/doctor";

/// `path` with its one parameter (`{…}`) filled.
pub fn fill(path: &str, value: &str) -> String {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => format!("{}{value}{}", &path[..open], &path[close + 1..]),
        _ => path.to_owned(),
    }
}

/// A request's status URL (`GET`).
pub fn request(id: Uuid) -> String {
    fill(REQUEST, &id.to_string())
}

/// Where an approver approves a request (`POST`).
pub fn approve(id: Uuid) -> String {
    fill(REQUEST_APPROVE, &id.to_string())
}

/// Where an approver denies a request (`POST`).
pub fn deny(id: Uuid) -> String {
    fill(REQUEST_DENY, &id.to_string())
}

/// A sweep's report file (`report.html`, `report.csv`, `report.json`).
pub(crate) fn sweep_file(run: &str, file: &str) -> String {
    fill(SWEEP_FILE, run).replace("{file}", file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_filled_at_its_parameter() {
        let id = Uuid::nil();
        assert_eq!(request(id), format!("/api/requests/{id}"));
        assert_eq!(approve(id), format!("/api/requests/{id}/approve"));
        assert_eq!(deny(id), format!("/api/requests/{id}/deny"));
        assert_eq!(sweep_file("r1", "report.csv"), "/api/sweeps/r1/report.csv");
        assert_eq!(fill(AUDIT, "x"), "/api/audit");
    }
}
