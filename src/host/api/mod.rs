//! The HTTP API: the handlers of the HTTP-triggered functions, the one table from documented
//! error codes to statuses (`answers`), the response bodies, and `ApiError`, the only type that
//! becomes an error response. Nothing outside `host` names an HTTP status.

pub mod answers;
pub mod error;
pub mod http;
