//! The file as written, each key declared once: its name, its TOML type, and the spanned
//! field the semantic pass reads (every key optional, so that pass can report a missing or
//! invalid value at its own line:column and apply the default itself).
//!
//! One `tables!` entry gives both the serde struct and the key list the shape pass
//! (`schema::check`) walks, so the two cannot disagree.

use crate::schema::{Field, Kind};
use serde::Deserialize;
use std::marker::PhantomData;
use toml::Spanned;

/// A key's TOML type: what the shape pass expects and what serde reads into.
pub(crate) trait Shape {
    type Raw;
    const KIND: Kind;
}

/// A string holding a secret reference (`env:NAME`, `file:PATH`): only its type message differs,
/// and serde's messages about it are never shown.
pub(crate) struct Secret;

/// An array: of strings, or of tables (`[[users.mappings]]`).
pub(crate) struct List<T>(PhantomData<T>);

macro_rules! scalar {
    ($($ty:ty => $raw:ty, $kind:expr;)*) => {
        $(impl Shape for $ty {
            type Raw = Spanned<$raw>;
            const KIND: Kind = $kind;
        })*
    };
}

scalar! {
    String => String, Kind::Str;
    Secret => String, Kind::Secret;
    i64 => i64, Kind::Int;
    // An integer stands for a float too (`threshold_ratio = 1`).
    f64 => f64, Kind::Float;
    bool => bool, Kind::Bool;
}

impl Shape for List<String> {
    type Raw = Vec<Spanned<String>>;
    const KIND: Kind = Kind::Strs;
}

/// Declares tables: `Name { key: Type, … }` becomes `struct Name { key: Option<Spanned<…>> }`
/// and `Name::FIELDS`, in the order written (error messages list keys in that order).
macro_rules! tables {
    ($( $(#[$doc:meta])* $name:ident { $( $field:ident : $ty:ty ),* $(,)? } )*) => {
        $(
            $(#[$doc])*
            #[derive(Deserialize, Default)]
            #[serde(deny_unknown_fields)]
            pub(crate) struct $name {
                $( pub $field: Option<<$ty as Shape>::Raw>, )*
            }

            impl $name {
                pub(crate) const FIELDS: &'static [Field] =
                    &[ $( Field::new(stringify!($field), <$ty as Shape>::KIND), )* ];
            }

            impl Shape for $name {
                type Raw = Spanned<$name>;
                const KIND: Kind = Kind::Table(<$name>::FIELDS);
            }

            impl Shape for List<$name> {
                type Raw = Vec<Spanned<$name>>;
                const KIND: Kind = Kind::Tables(<$name>::FIELDS);
            }
        )*
    };
}

tables! {
    /// A job file.
    RawJob {
        name: String,
        schedule: String,
        skip_out_of_scope_deletions: bool,
        deletion_threshold: i64,
        deletion_max_share: i64,
        log_retention_days: i64,
        source: RawSource,
        target: RawTarget,
        escrow: RawEscrow,
        quarantine: RawQuarantine,
        notifications: RawNotifications,
        users: RawUsers,
        groups: RawGroups,
    }

    RawSource {
        tenant_id: String,
        client_id: String,
        client_secret: Secret,
        certificate: Secret,
        private_key: Secret,
        assertion_algorithm: String,
        service_principal_id: String,
        scope: String,
        exclude_default_access: bool,
        graph_url: String,
        login_url: String,
        page_size: i64,
    }

    RawTarget {
        url: String,
        token: Secret,
        dialect: String,
        max_concurrency: i64,
        timeout_secs: i64,
        membership_batch_size: i64,
        group_members_removal: String,
        manager_format: String,
        clear_on_null: bool,
        actions: RawActions,
    }

    RawActions {
        create: bool,
        update: bool,
        delete: bool,
    }

    RawEscrow {
        retry_delays: List<String>,
        daily_after: String,
        give_up_after: String,
    }

    RawQuarantine {
        threshold_min_failures: i64,
        threshold_ratio: f64,
        threshold_non_reference: i64,
        threshold_total: i64,
        backoff_max: String,
        disable_after: String,
    }

    RawNotifications {
        webhook_url: String,
        webhook_token: Secret,
        smtp: RawSmtp,
    }

    RawSmtp {
        host: String,
        port: i64,
        tls: String,
        starttls: bool,
        username: String,
        password: Secret,
        from: String,
        to: List<String>,
    }

    RawUsers {
        mappings: List<RawMapping>,
        scoping: List<RawFilter>,
        skip_out_of_scope_deletions: bool,
        deprovision: String,
    }

    RawGroups {
        enabled: bool,
        nested: String,
        out_of_scope: String,
        reconcile: String,
        mappings: List<RawMapping>,
        scoping: List<RawFilter>,
    }

    RawMapping {
        target: String,
        source: String,
        constant: String,
        expression: String,
        matching: i64,
        apply: String,
        default: String,
        required: bool,
    }

    RawFilter {
        name: String,
        clauses: List<RawClause>,
    }

    RawClause {
        attribute: String,
        operator: String,
        value: String,
    }

    /// `scimsync.toml`, the service file next to the job files.
    RawService {
        admin: RawAdmin,
        store: RawStore,
    }

    /// `[store]`: where job state lives when not in sled directories.
    RawStore {
        url: Secret,
        password: Secret,
        lease_ttl: String,
    }

    RawAdmin {
        bind: String,
        token: Secret,
        tls_cert: Secret,
        tls_key: Secret,
        allow_plain_http: bool,
    }
}
