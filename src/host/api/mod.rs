//! The HTTP API: the handlers of the HTTP-triggered functions, one file per resource (`users`,
//! `verifications`, `requests`, `sweeps`, `audit`, `health`), who may call each (`caller`), the
//! one table from documented error codes to statuses (`answers`), the response bodies, and
//! `ApiError`, the only type that becomes an error response. Nothing outside `host` names an HTTP
//! status.

pub mod answers;
pub mod audit;
pub mod caller;
pub mod error;
pub mod health;
pub mod requests;
pub mod sweeps;
pub mod users;
pub mod verifications;
