//! Static checks before a mapping is saved: unknown functions, arity, unknown attributes, and
//! the placement rules Entra documents (SelectUniqueValue on top, IgnoreFlowIfNullOrEmpty never
//! as an IIF condition).

use crate::ast::Expr;
use crate::error::ExprError;

/// Arity of one function: `min..=max` arguments (`max == None`: unbounded), and which argument
/// positions (0-based) may not be left empty.
#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    pub name: &'static str,
    pub min: usize,
    pub max: Option<usize>,
    pub required: &'static [usize],
}

const fn f(
    name: &'static str,
    min: usize,
    max: Option<usize>,
    required: &'static [usize],
) -> FunctionSpec {
    FunctionSpec {
        name,
        min,
        max,
        required,
    }
}

/// Every function of the Entra reference, names spelled exactly (they are case-sensitive).
pub const FUNCTIONS: &[FunctionSpec] = &[
    f("Append", 2, Some(2), &[0, 1]),
    f("AppRoleAssignmentsComplex", 1, Some(1), &[0]),
    f("AssertiveAppRoleAssignmentsComplex", 1, Some(1), &[0]),
    f("BitAnd", 2, Some(2), &[0, 1]),
    f("CBool", 1, Some(1), &[0]),
    f("CDate", 1, Some(1), &[0]),
    f("Coalesce", 1, None, &[0]),
    f("ConvertToBase64", 1, Some(1), &[0]),
    f("ConvertToUTF8Hex", 1, Some(1), &[0]),
    f("Count", 1, Some(1), &[0]),
    f("CStr", 1, Some(1), &[0]),
    f("DateAdd", 3, Some(3), &[0, 1, 2]),
    f("DateDiff", 3, Some(3), &[0, 1, 2]),
    f("DateFromNum", 1, Some(1), &[0]),
    f("DefaultDomain", 0, Some(0), &[]),
    f("FormatDateTime", 4, Some(4), &[0, 3]),
    f("Guid", 0, Some(0), &[]),
    f("IgnoreFlowIfNullOrEmpty", 1, Some(1), &[0]),
    f("IIF", 3, Some(3), &[0, 1, 2]),
    f("InStr", 2, Some(4), &[0, 1]),
    f("IsNull", 1, Some(1), &[0]),
    f("IsNullOrEmpty", 1, Some(1), &[0]),
    f("IsPresent", 1, Some(1), &[0]),
    f("IsString", 1, Some(1), &[0]),
    f("Item", 2, Some(2), &[0, 1]),
    f("Join", 2, None, &[0]),
    f("Left", 2, Some(2), &[0, 1]),
    f("Len", 1, Some(1), &[0]),
    f("Mid", 3, Some(3), &[0, 1, 2]),
    f("NormalizeDiacritics", 1, Some(1), &[0]),
    f("Not", 1, Some(1), &[0]),
    f("Now", 0, Some(0), &[]),
    f("NumFromDate", 1, Some(1), &[0]),
    f("PCase", 1, Some(2), &[0]),
    f("RandomString", 5, Some(6), &[0, 1, 2, 3, 4]),
    f("Redact", 1, Some(1), &[0]),
    f("RemoveDuplicates", 1, Some(1), &[0]),
    f("Replace", 3, Some(7), &[0]),
    f("SelectUniqueValue", 2, None, &[]),
    f("SingleAppRoleAssignment", 1, Some(1), &[0]),
    f("Split", 2, Some(2), &[0, 1]),
    f("StripSpaces", 1, Some(1), &[0]),
    f("Switch", 4, None, &[0]),
    f("ToLower", 1, Some(2), &[0]),
    f("ToUpper", 1, Some(2), &[0]),
    f("Word", 3, Some(3), &[0, 1, 2]),
];

/// The bare words Entra's functions accept as enum values.
pub const WORDS: &[&str] = &["vbBinaryCompare", "vbTextCompare", "True", "False"];

/// Looks a function up by its exact (case-sensitive) name.
pub fn function(name: &str) -> Option<&'static FunctionSpec> {
    FUNCTIONS.iter().find(|s| s.name == name)
}

/// The arity message for a call, if its argument list does not fit the function.
pub(crate) fn call_problem(spec: &FunctionSpec, args: &[Option<Expr>]) -> Option<String> {
    let n = args.len();
    if n < spec.min || spec.max.is_some_and(|max| n > max) {
        let expected = match spec.max {
            Some(max) if max == spec.min => format!("exactly {max}"),
            Some(max) => format!("{}..{max}", spec.min),
            None => format!("at least {}", spec.min),
        };
        let noun = if expected == "exactly 1" {
            "argument"
        } else {
            "arguments"
        };
        return Some(format!("{} expects {expected} {noun}, got {n}", spec.name));
    }
    if spec.name == "Switch" && !(n - 2).is_multiple_of(2) {
        return Some(format!(
            "Switch needs key/value pairs after the source and default (an even number of arguments), got {n}"
        ));
    }
    if let Some(&i) = spec
        .required
        .iter()
        .find(|&&i| args.get(i).is_some_and(Option::is_none))
    {
        return Some(format!(
            "argument {} of {} is required and cannot be left empty",
            i + 1,
            spec.name
        ));
    }
    None
}

pub(crate) fn unknown_function(name: &str) -> String {
    match FUNCTIONS.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
        Some(s) => format!(
            "unknown function '{name}'; function names are case-sensitive, did you mean '{}'?",
            s.name
        ),
        None => {
            // A near miss (`Swtich`, `Jion`): transpositions count as one edit.
            let near = FUNCTIONS
                .iter()
                .map(|s| {
                    (
                        strsim::damerau_levenshtein(
                            &s.name.to_ascii_lowercase(),
                            &name.to_ascii_lowercase(),
                        ),
                        s.name,
                    )
                })
                .filter(|(d, known)| *d <= 2.min(known.len() / 3).max(1))
                .min_by_key(|(d, _)| *d);
            match near {
                Some((_, known)) => format!("unknown function '{name}'; did you mean '{known}'?"),
                None => format!("unknown function '{name}'"),
            }
        }
    }
}

/// Every problem a mapping would hit before any user is evaluated, in source order.
pub fn check(expr: &Expr, known_attribute: &dyn Fn(&str) -> bool) -> Vec<ExprError> {
    let mut errors = Vec::new();
    visit(expr, true, known_attribute, &mut errors);
    errors
}

fn visit(expr: &Expr, top: bool, known: &dyn Fn(&str) -> bool, out: &mut Vec<ExprError>) {
    match expr {
        Expr::Call { name, args, span } => {
            match function(name) {
                None => out.push(ExprError::at(span, unknown_function(name))),
                Some(spec) => {
                    if let Some(problem) = call_problem(spec, args) {
                        out.push(ExprError::at(span, problem));
                    }
                }
            }
            if name == "SelectUniqueValue" && !top {
                out.push(ExprError::at(
                    span,
                    "SelectUniqueValue must be the whole expression; it cannot be nested",
                ));
            }
            if name == "IIF"
                && let Some(Some(Expr::Call {
                    name: inner,
                    span: s,
                    ..
                })) = args.first()
                && inner == "IgnoreFlowIfNullOrEmpty"
            {
                out.push(ExprError::at(
                    s,
                    "IgnoreFlowIfNullOrEmpty is not a condition; wrap the whole IIF in it instead",
                ));
            }
            for arg in args.iter().flatten() {
                visit(arg, false, known, out);
            }
        }
        Expr::Attr { name, span } => {
            if !known(name) {
                out.push(ExprError::at(
                    span,
                    format!("unknown source attribute [{name}]"),
                ));
            }
        }
        Expr::Compare { lhs, rhs, .. } => {
            visit(lhs, false, known, out);
            visit(rhs, false, known, out);
        }
        Expr::Word { value, span } => {
            let numeric = value.starts_with(|c: char| c.is_ascii_digit() || c == '-');
            if !numeric && !WORDS.contains(&value.as_str()) {
                out.push(ExprError::at(
                    span,
                    format!(
                        "bare word '{value}' is not a value; write an attribute as [{value}] and text as \"{value}\""
                    ),
                ));
            }
        }
        Expr::Str { .. } | Expr::Int { .. } => {}
    }
}

/// The source attributes an expression reads, sorted and without duplicates (for `$select`).
pub fn attributes(expr: &Expr) -> Vec<String> {
    let mut names = Vec::new();
    expr.walk(&mut |e| {
        if let Expr::Attr { name, .. } = e {
            names.push(name.clone());
        }
    });
    names.sort();
    names.dedup();
    names
}

/// True when the expression contains `Redact(…)`: its value must show as `[Redact]` in logs.
pub fn redacts(expr: &Expr) -> bool {
    let mut found = false;
    expr.walk(&mut |e| {
        if let Expr::Call { name, .. } = e {
            found |= name == "Redact";
        }
    });
    found
}
