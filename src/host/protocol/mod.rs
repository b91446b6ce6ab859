//! The Azure Functions custom-handler protocol: the invocation envelopes the host sends
//! (`envelope`), the per-invocation context and log fields (`invocation`), running a queue or
//! timer function from its envelope (`invoke`), the function catalog (`functions`) and, in `dev`,
//! the host's admin API (`admin`).

pub mod admin;
pub mod envelope;
pub mod functions;
pub mod invocation;
pub mod invoke;
