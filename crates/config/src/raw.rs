//! Each key declared once. A table's keys are `config!` entries in `lib.rs`, one per key:
//!
//! ```text
//! /// 1..=64.
//! max_concurrency: i64 => pub max_concurrency: usize = int_in(1..=64, DEFAULT_MAX_CONCURRENCY),
//! ```
//!
//! names the key and its TOML type, the typed field, and the rule converting one to the other
//! (range, default, check). From that come the spanned serde struct (every key optional, so
//! the rule can report a missing or invalid value at its own line:column and apply the default
//! itself), the key list the shape pass (`schema::check`) walks, the public typed struct and
//! its `from_raw`. Why not serde defaults plus a pass over the typed value: serde stops at the
//! first error, and a file's every problem is reported in one run; rules keep that, and keep
//! the value's span until the check that needs it. Lists of tables with their own cross-entry
//! rules (mappings, scoping filters) and the service file's top level stay `tables!` entries
//! read by hand-written passes in `validate`.
use crate::schema::Kind;
use std::marker::PhantomData;
use toml::Spanned;

pub(crate) use crate::{
    RawAdmin, RawJob, RawNotifications, RawSmtp, RawSource, RawStore, RawTarget, RawUsers,
};

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
            #[derive(serde::Deserialize, Default)]
            #[serde(deny_unknown_fields)]
            pub(crate) struct $name {
                $( pub $field: Option<<$ty as $crate::raw::Shape>::Raw>, )*
            }

            impl $name {
                pub(crate) const FIELDS: &'static [$crate::schema::Field] =
                    &[ $( $crate::schema::Field::new(stringify!($field), <$ty as $crate::raw::Shape>::KIND), )* ];
            }

            impl $crate::raw::Shape for $name {
                type Raw = toml::Spanned<$name>;
                const KIND: $crate::schema::Kind = $crate::schema::Kind::Table(<$name>::FIELDS);
            }

            impl $crate::raw::Shape for $crate::raw::List<$name> {
                type Raw = Vec<toml::Spanned<$name>>;
                const KIND: $crate::schema::Kind = $crate::schema::Kind::Tables(<$name>::FIELDS);
            }
        )*
    };
}

pub(crate) use tables;

/// Declares a table of a configuration file once. Each entry
///
/// ```text
/// /// doc
/// key: Shape => pub field: Type = rule(args…),
/// ```
///
/// is the whole key: its name and TOML type (the raw struct, via [`tables!`]), its typed
/// field, and its conversion `cx.rule(value, "prefix.key", args…)`, a `Cx` method that reports
/// a bad value at its own file:line:column and returns the default (rules such as `int_in`,
/// `duration_or`, `url`, `choice`, `flag` declare range, default and check in `args`).
/// Two other forms: `key: Shape,` is a key without a field of its own, read by another key's
/// rule (`starttls`, by `tls`'s); `pub field: Type = rule(args…),` a field without a key
/// (`cx.rule(args…)`).
///
/// Generates `struct $Raw` (keys in the order written: error messages list them so),
/// `pub struct $Name` and `$Name::from_raw(cx, at, raw, extra…)`, which converts in the order
/// written, so an argument may name a field converted before it, a key not yet converted
/// (its raw value), `at` (the table's span) or an extra parameter. A prefix of `""` is the
/// file's top level. Checks over several tables stay hand-written `Cx` methods in `validate`.
macro_rules! config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident from $raw:ident at $prefix:tt
            ($cx:ident, $at:ident $(, $arg:ident : $argty:ty)* $(,)?)
        { $($body:tt)* }
    ) => {
        $crate::raw::config!(@entries
            [$(#[$meta])* $name $raw $prefix ($cx, $at $(, $arg: $argty)*)] [] [] []
            $($body)*
        );
    };

    // A key and its field.
    (@entries $head:tt [$($keys:tt)*] [$($fields:tt)*] [$($steps:tt)*]
        $(#[$doc:meta])*
        $key:ident : $shape:ty => pub $field:ident : $fty:ty = $rule:ident ( $($rarg:expr),* $(,)? )
        $(, $($rest:tt)*)?
    ) => {
        $crate::raw::config!(@entries $head
            [$($keys)* $key: $shape,]
            [$($fields)* $(#[$doc])* pub $field: $fty,]
            [$($steps)* [$field ($key) $rule ($($rarg),*) $fty]]
            $($($rest)*)?
        );
    };
    // A key read by another key's rule.
    (@entries $head:tt [$($keys:tt)*] $fields:tt $steps:tt
        $(#[$doc:meta])*
        $key:ident : $shape:ty
        $(, $($rest:tt)*)?
    ) => {
        $crate::raw::config!(@entries $head [$($keys)* $key: $shape,] $fields $steps $($($rest)*)?);
    };
    // A field without a key.
    (@entries $head:tt $keys:tt [$($fields:tt)*] [$($steps:tt)*]
        $(#[$doc:meta])*
        pub $field:ident : $fty:ty = $rule:ident ( $($rarg:expr),* $(,)? )
        $(, $($rest:tt)*)?
    ) => {
        $crate::raw::config!(@entries $head $keys
            [$($fields)* $(#[$doc])* pub $field: $fty,]
            [$($steps)* [$field () $rule ($($rarg),*) $fty]]
            $($($rest)*)?
        );
    };

    // Every entry read: the raw struct, the typed one and the conversion.
    (@entries
        [$(#[$meta:meta])* $name:ident $raw:ident $prefix:tt ($cx:ident, $at:ident $(, $arg:ident : $argty:ty)*)]
        [$($key:ident : $shape:ty,)*]
        [$($fields:tt)*]
        [$([$field:ident ($($vkey:ident)?) $rule:ident ($($rarg:expr),*) $fty:ty])*]
    ) => {
        $crate::raw::tables! { $raw { $($key: $shape),* } }

        $(#[$meta])*
        pub struct $name { $($fields)* }

        impl $name {
            /// The table's typed value, each key converted by its rule (errors go to `cx`).
            #[allow(unused_variables)]
            pub(crate) fn from_raw(
                $cx: &mut $crate::validate::Cx<'_>,
                $at: std::ops::Range<usize>,
                raw: $raw,
                $($arg: $argty,)*
            ) -> Self {
                let $raw { $($key),* } = raw;
                $(
                    let $field: $fty = $cx.$rule(
                        $($vkey, $crate::raw::config!(@key $prefix $vkey),)?
                        $($rarg),*
                    );
                )*
                $name { $($field),* }
            }
        }
    };

    (@key "" $key:ident) => { stringify!($key) };
    (@key $prefix:tt $key:ident) => { concat!($prefix, ".", stringify!($key)) };
}
pub(crate) use config;

/// A typed value written as one of a few strings (`dialect = "entra"`): its spellings, in the
/// order error messages list them.
pub(crate) trait Choice: Copy + 'static {
    const NAMES: &'static [(&'static str, Self)];
}

/// `spellings!(Type { "name" => Variant, … })`: `Type`'s [`Choice`] spellings.
macro_rules! spellings {
    ($ty:ident { $($name:literal => $variant:ident),* $(,)? }) => {
        impl $crate::raw::Choice for $ty {
            const NAMES: &'static [(&'static str, Self)] = &[$(($name, $ty::$variant)),*];
        }
    };
}
pub(crate) use spellings;

tables! {
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

}
