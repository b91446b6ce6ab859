//! The shared vocabulary: plain types and helpers every layer may use, and that import nothing of
//! the crate but each other. Adapters (Graph, storage, Key Vault, delivery) speak in these terms,
//! so none of them needs another.
//!
//! - `mask`: masking of phone numbers and email addresses for records, responses and logs;
//! - `caller`: who acted (`CallerRecord`);
//! - `channel`: the out-of-band channels and an address of record;
//! - `csv`: CSV fields a spreadsheet opens safely;
//! - `error`: the documented error codes, refusals apart from faults;
//! - `role`: the API's app roles;
//! - `paths`: the API's paths, which the router is built from and views and messages fill;
//! - `ports`: the small traits by which one adapter is lent to another (a secret source, a mail
//!   sender), wired in `app.rs`.

pub mod caller;
pub mod channel;
pub mod csv;
pub mod error;
pub mod mask;
pub mod paths;
pub mod ports;
pub mod role;

pub use caller::{CallerRecord, Person};
pub use channel::{Address, Channel};
pub use error::{ErrorCode, Fault, Refusal};
pub use mask::{mask_email, mask_phone};
pub use role::Role;
