//! The function set, as `functions/<name>/function.json` declares it. The router serves exactly
//! these; `tests/api/host_contract.rs` holds the two against each other.

/// How a function is triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Forwarded HTTP (`enableForwardingHttpRequest`): the handler sees the original request.
    Http {
        methods: &'static [&'static str],
        route: &'static str,
    },
    /// Storage queue: `POST /{name}` with the `{Data, Metadata}` envelope.
    Queue { queue: &'static str },
    /// Timer: `POST /{name}` with the `{Data, Metadata}` envelope.
    Timer { schedule: &'static str },
}

/// One function of the set.
#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    pub name: &'static str,
    pub trigger: Trigger,
    /// The trigger binding's name in function.json (`Data.<binding>` in the envelope).
    pub binding: &'static str,
    pub summary: &'static str,
}

/// The queue the intake writes to and the worker reads.
pub(crate) const REQUESTS_QUEUE: &str = crate::intake::QUEUE;
/// Where the host moves a message after `maxDequeueCount` failed attempts.
pub const POISON_QUEUE: &str = crate::intake::POISON_QUEUE;
/// The notice outbox's queue.
pub(crate) const NOTICES_QUEUE: &str = crate::recovery::notice::QUEUE;

pub const FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        name: "tap",
        trigger: Trigger::Http {
            methods: &["POST"],
            route: "users/{user}/tap",
        },
        binding: "req",
        summary: "issue a Temporary Access Pass and deliver it out of band",
    },
    FunctionSpec {
        name: "reset",
        trigger: Trigger::Http {
            methods: &["POST"],
            route: "users/{user}/mfa/reset",
        },
        binding: "req",
        summary: "require re-registration of MFA; optional TAP in the same call",
    },
    FunctionSpec {
        name: "verifications",
        trigger: Trigger::Http {
            methods: &["POST"],
            route: "users/{user}/verifications",
        },
        binding: "req",
        summary: "send a one-time code to the user's address of record, to verify a caller",
    },
    FunctionSpec {
        name: "verification-confirm",
        trigger: Trigger::Http {
            methods: &["POST"],
            route: "verifications/{id}/confirm",
        },
        binding: "req",
        summary: "check the code the user read back",
    },
    FunctionSpec {
        name: "audit",
        trigger: Trigger::Http {
            methods: &["GET"],
            route: "audit",
        },
        binding: "req",
        summary: "query the audit trail",
    },
    FunctionSpec {
        name: "requests",
        trigger: Trigger::Http {
            methods: &["POST", "GET"],
            route: "requests/{id?}",
        },
        binding: "req",
        summary: "asynchronous intake for ITSM webhooks and flows; status",
    },
    FunctionSpec {
        name: "request-approve",
        trigger: Trigger::Http {
            methods: &["POST"],
            route: "requests/{id}/approve",
        },
        binding: "req",
        summary: "a second approver agrees to a held recovery; it runs",
    },
    FunctionSpec {
        name: "approvals",
        trigger: Trigger::Http {
            methods: &["GET"],
            route: "approvals",
        },
        binding: "req",
        summary: "the requests waiting for an approver",
    },
    FunctionSpec {
        name: "request-deny",
        trigger: Trigger::Http {
            methods: &["POST"],
            route: "requests/{id}/deny",
        },
        binding: "req",
        summary: "a second approver refuses a held recovery",
    },
    FunctionSpec {
        name: "recovery-worker",
        trigger: Trigger::Queue { queue: REQUESTS_QUEUE },
        binding: "message",
        summary: "run queued requests",
    },
    FunctionSpec {
        name: "recovery-poison",
        trigger: Trigger::Queue { queue: POISON_QUEUE },
        binding: "message",
        summary: "close requests that exhausted their retries",
    },
    FunctionSpec {
        name: "notice-worker",
        trigger: Trigger::Queue { queue: NOTICES_QUEUE },
        binding: "message",
        summary: "send the notices a recovery left in the outbox",
    },
    FunctionSpec {
        name: "compliance-sweep",
        trigger: Trigger::Timer {
            schedule: "%SWEEP_SCHEDULE%",
        },
        binding: "timer",
        summary: "lockout-risk and TAP policy sweep",
    },
    FunctionSpec {
        name: "audit-export",
        trigger: Trigger::Timer {
            schedule: "0 */1 * * * *",
        },
        binding: "timer",
        summary: "send the audit trail's new records to Log Analytics (Logs Ingestion API)",
    },
    FunctionSpec {
        name: "users",
        trigger: Trigger::Http {
            methods: &["GET"],
            route: "users",
        },
        binding: "req",
        summary: "find a user by name, mail or UPN (up to 10 candidates, contact details masked)",
    },
    FunctionSpec {
        name: "user",
        trigger: Trigger::Http {
            methods: &["GET"],
            route: "users/{user}",
        },
        binding: "req",
        summary: "what an agent needs to know before recovering a user (masked)",
    },
    FunctionSpec {
        name: "console",
        trigger: Trigger::Http {
            methods: &["GET"],
            route: "console/{*path}",
        },
        binding: "req",
        summary: "the helpdesk console (static page; data from the API with the agent's token)",
    },
    FunctionSpec {
        name: "sweep-run",
        trigger: Trigger::Http {
            methods: &["POST"],
            route: "sweeps",
        },
        binding: "req",
        summary: "run the compliance sweep now (the console's \"run now\")",
    },
    FunctionSpec {
        name: "sweeps",
        trigger: Trigger::Http {
            methods: &["GET"],
            route: "sweeps/{run}/{file?}",
        },
        binding: "req",
        summary: "the latest sweep's summary and its reports",
    },
    FunctionSpec {
        name: "health",
        trigger: Trigger::Http {
            methods: &["GET"],
            route: "health",
        },
        binding: "req",
        summary: "liveness, unauthenticated",
    },
    FunctionSpec {
        name: "verification",
        trigger: Trigger::Http {
            methods: &["GET"],
            route: "verifications/{id}",
        },
        binding: "req",
        summary: "where a verification stands, for its caller",
    },
    FunctionSpec {
        name: "confirm",
        trigger: Trigger::Http {
            methods: &["GET", "POST"],
            route: "confirm/{id}",
        },
        binding: "req",
        summary: "the confirmation link's page and the user's answer (anonymous: the secret is the proof)",
    },
    FunctionSpec {
        name: "recovery-block-lift",
        trigger: Trigger::Http {
            methods: &["POST"],
            route: "users/{user}/recovery-block/lift",
        },
        binding: "req",
        summary: "an approver lifts the block \"this is not me\" put on a user's recoveries",
    },
    FunctionSpec {
        name: "doctor",
        trigger: Trigger::Http {
            methods: &["GET"],
            route: "doctor",
        },
        binding: "req",
        summary: "every read the service depends on, per feature (Audit.Read)",
    },
];

/// The function called `name`.
pub fn find(name: &str) -> Option<&'static FunctionSpec> {
    FUNCTIONS.iter().find(|f| f.name == name)
}
