//! Entra scoping filters (reference §3.2–3.3): is an object in scope by its attributes?
//!
//! Clauses within a filter are AND'ed, filters are OR'ed, and no filter means everything is in
//! scope. Choices where Entra's documentation is silent or vague, made here on purpose:
//! - **Null or empty** (missing key, JSON null, `""`, `[]`): every clause is false except
//!   `IS NULL` (true). That includes `NOT EQUALS`, `!&` and `NOT REGEX MATCH`, as Entra
//!   documents for the last one: a user without a department is not "NOT EQUALS Sales".
//! - **`&` / `!&`** (Entra: attribute "exists / does not exist in the input string value"):
//!   the clause value is a comma-separated list (items trimmed); `&` is true when the
//!   attribute equals one item, `!&` when it equals none; both case-sensitive.
//! - **Regex dialect** is Rust's `regex` crate, not .NET: unanchored search like .NET's
//!   `IsMatch`, case-sensitive, but without lookaround or backreferences. Patterns are checked
//!   when the config loads; one that still fails to compile here makes its clause false.
//! - **Multi-valued attributes** (arrays), which Entra does not support: a positive operator is
//!   true when any value satisfies it; a negative one (`NOT EQUALS`, `!&`, `NOT REGEX MATCH`)
//!   when no value satisfies its positive form.
//! - **Scalars as text**: numbers compare by their JSON text, booleans as .NET prints them
//!   (`True`/`False`). Objects (e.g. `manager`) are only non-null: other tests on them are false.
//! - `Greater_Than*` compare integers: attribute and value are parsed as `i64` (surrounding
//!   spaces allowed, like .NET's `int.Parse`); anything else is false.
//! - Attribute names are matched exactly (directory extension names are case-sensitive).
//!
//! Regexes are compiled once into a [`CompiledFilters`] the caller owns (no global cache);
//! [`evaluate_filters`] compiles them on every call, for one-off checks.

use scimsync_config::{Clause, Operator, ScopingFilter};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The outcome of the scoping filters for one object, with a reason for the provisioning log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterVerdict {
    pub in_scope: bool,
    /// E.g. `filter 'Sales': department EQUALS "Sales" is false`, or `no scoping filter`.
    pub reason: String,
}

/// A job's scoping filters with their `REGEX MATCH` patterns compiled once. Build it when the
/// job is loaded (or once per cycle) and evaluate every object through it. Owned,
/// `Send + Sync`.
#[derive(Debug, Clone)]
pub struct CompiledFilters {
    filters: Vec<ScopingFilter>,
    /// `regexes[f][c]`: the compiled pattern of filter `f`'s clause `c` when it is a regex
    /// clause whose pattern compiles, else `None` (such a clause is false).
    regexes: Vec<Vec<Option<regex::Regex>>>,
}

impl CompiledFilters {
    pub fn new(filters: &[ScopingFilter]) -> CompiledFilters {
        let regexes = filters
            .iter()
            .map(|f| {
                f.clauses
                    .iter()
                    .map(|c| match c.operator {
                        Operator::RegexMatch | Operator::NotRegexMatch => {
                            regex::Regex::new(c.value.as_deref().unwrap_or("")).ok()
                        }
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        CompiledFilters {
            filters: filters.to_vec(),
            regexes,
        }
    }

    /// The filters this was built from.
    pub fn filters(&self) -> &[ScopingFilter] {
        &self.filters
    }

    /// Evaluate the filters on one object's source attributes.
    pub fn evaluate(&self, attrs: &BTreeMap<String, Value>) -> FilterVerdict {
        evaluate_with(attrs, &self.filters, Regexes::Ready(&self.regexes))
    }
}

/// Where a clause's compiled regex comes from: a [`CompiledFilters`], or compiled on the spot.
#[derive(Clone, Copy)]
pub(crate) enum Regexes<'a> {
    Ready(&'a [Vec<Option<regex::Regex>>]),
    OnTheFly,
}

impl<'a> Regexes<'a> {
    fn get(self, filter: usize, clause: usize, pattern: &str) -> Option<Cow<'a, regex::Regex>> {
        match self {
            Regexes::Ready(table) => table
                .get(filter)
                .and_then(|f| f.get(clause))
                .and_then(Option::as_ref)
                .map(Cow::Borrowed),
            Regexes::OnTheFly => regex::Regex::new(pattern).ok().map(Cow::Owned),
        }
    }
}

/// Evaluate `filters` on one object's source attributes. Compiles `REGEX MATCH` patterns on
/// every call: to evaluate many objects, build a [`CompiledFilters`] once.
pub fn evaluate_filters(
    attrs: &BTreeMap<String, Value>,
    filters: &[ScopingFilter],
) -> FilterVerdict {
    evaluate_with(attrs, filters, Regexes::OnTheFly)
}

pub(crate) fn evaluate_with(
    attrs: &BTreeMap<String, Value>,
    filters: &[ScopingFilter],
    regexes: Regexes<'_>,
) -> FilterVerdict {
    if filters.is_empty() {
        return FilterVerdict {
            in_scope: true,
            reason: "no scoping filter".into(),
        };
    }
    let mut failures = Vec::with_capacity(filters.len());
    for (i, filter) in filters.iter().enumerate() {
        let label = match &filter.name {
            Some(name) => format!("filter '{name}'"),
            None => format!("filter {}", i + 1),
        };
        let failed = filter
            .clauses
            .iter()
            .enumerate()
            .find(|&(ci, c)| {
                !clause_holds(attrs, c, || {
                    regexes.get(i, ci, c.value.as_deref().unwrap_or(""))
                })
            })
            .map(|(_, c)| c);
        match failed {
            None => {
                return FilterVerdict {
                    in_scope: true,
                    reason: format!("{label} matched"),
                };
            }
            Some(failed) => failures.push(format!("{label}: {}", describe(attrs, failed))),
        }
    }
    FilterVerdict {
        in_scope: false,
        reason: failures.join("; "),
    }
}

/// `department EQUALS "Sales" is false`, plus a note when the attribute is empty (the usual
/// surprise with the negative operators).
fn describe(attrs: &BTreeMap<String, Value>, c: &Clause) -> String {
    let mut s = format!("{} {}", c.attribute, c.operator);
    if let Some(v) = &c.value {
        s.push_str(&format!(" {v:?}"));
    }
    s.push_str(" is false");
    if values(attrs.get(&c.attribute)).is_empty() && c.operator != Operator::IsNull {
        s.push_str(&format!(" ({} is empty)", c.attribute));
    }
    s
}

/// The attribute's non-empty values: a scalar is one value, an array its non-empty items.
fn values(v: Option<&Value>) -> Vec<&Value> {
    fn present(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        }
    }
    match v {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter(|v| present(v)).collect(),
        Some(v) if present(v) => vec![v],
        Some(_) => Vec::new(),
    }
}

/// A scalar as text; `None` for objects and arrays (not comparable).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Whether clause `c` holds; `regex` gives its compiled pattern, asked for only when needed.
fn clause_holds<'r>(
    attrs: &BTreeMap<String, Value>,
    c: &Clause,
    regex: impl FnOnce() -> Option<Cow<'r, regex::Regex>>,
) -> bool {
    let vals = values(attrs.get(&c.attribute));
    let texts: Vec<String> = vals.iter().filter_map(|v| text(v)).collect();
    let operand = c.value.as_deref().unwrap_or("");
    let any_text = |f: &dyn Fn(&str) -> bool| texts.iter().any(|t| f(t));
    let text_op = !matches!(
        c.operator,
        Operator::IsNull
            | Operator::IsNotNull
            | Operator::IsTrue
            | Operator::IsFalse
            | Operator::GreaterThan
            | Operator::GreaterThanOrEquals
    );
    match c.operator {
        Operator::IsNull => vals.is_empty(),
        Operator::IsNotNull => !vals.is_empty(),
        // Null is false for every other operator, the negative ones included; so is a value
        // that has no text to compare (an object).
        _ if vals.is_empty() || (text_op && texts.is_empty()) => false,
        Operator::IsTrue => vals.iter().any(|v| boolean(v) == Some(true)),
        Operator::IsFalse => vals.iter().any(|v| boolean(v) == Some(false)),
        Operator::Equals => any_text(&|t| t == operand),
        Operator::NotEquals => !any_text(&|t| t == operand),
        Operator::EndsWith => any_text(&|t| t.ends_with(operand)),
        Operator::Includes => any_text(&|t| t.contains(operand)),
        Operator::In => any_text(&|t| in_list(t, operand)),
        Operator::NotIn => !any_text(&|t| in_list(t, operand)),
        Operator::GreaterThan | Operator::GreaterThanOrEquals => {
            let Ok(bound) = operand.trim().parse::<i64>() else {
                return false;
            };
            let strict = c.operator == Operator::GreaterThan;
            vals.iter().filter_map(|v| integer(v)).any(
                |n| {
                    if strict { n > bound } else { n >= bound }
                },
            )
        }
        Operator::RegexMatch | Operator::NotRegexMatch => {
            let Some(re) = regex() else {
                return false;
            };
            let hit = any_text(&|t| re.is_match(t));
            if c.operator == Operator::RegexMatch {
                hit
            } else {
                !hit
            }
        }
    }
}

fn in_list(t: &str, list: &str) -> bool {
    list.split(',').map(str::trim).any(|item| item == t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    fn clause(attribute: &str, op: &str, value: Option<&str>) -> Clause {
        Clause {
            attribute: attribute.into(),
            operator: Operator::parse(op).unwrap(),
            value: value.map(String::from),
            line: 1,
        }
    }

    fn filter(name: Option<&str>, clauses: Vec<Clause>) -> ScopingFilter {
        ScopingFilter {
            name: name.map(String::from),
            clauses,
            line: 1,
        }
    }

    /// Whether the single clause holds for `{attr: value}` (value `None`: attribute absent).
    fn holds(op: &str, operand: Option<&str>, value: Option<Value>) -> bool {
        let a = match value {
            Some(v) => attrs(json!({ "a": v })),
            None => BTreeMap::new(),
        };
        evaluate_filters(&a, &[filter(None, vec![clause("a", op, operand)])]).in_scope
    }

    #[test]
    fn no_filter_means_in_scope() {
        let v = evaluate_filters(&BTreeMap::new(), &[]);
        assert!(v.in_scope);
        assert_eq!(v.reason, "no scoping filter");
    }

    #[test]
    fn equality_and_text_operators_are_case_sensitive() {
        let s = |x: &str| Some(json!(x));
        assert!(holds("EQUALS", Some("Sales"), s("Sales")));
        assert!(!holds("EQUALS", Some("Sales"), s("sales")));
        assert!(holds("NOT EQUALS", Some("Sales"), s("sales")));
        assert!(!holds("NOT EQUALS", Some("Sales"), s("Sales")));
        assert!(holds(
            "ENDS_WITH",
            Some("@contoso.com"),
            s("ann@contoso.com")
        ));
        assert!(!holds(
            "ENDS_WITH",
            Some("@contoso.com"),
            s("ann@CONTOSO.com")
        ));
        assert!(holds("Includes", Some("ale"), s("Sales")));
        assert!(!holds("Includes", Some("ALE"), s("Sales")));
    }

    #[test]
    fn membership_lists() {
        let s = |x: &str| Some(json!(x));
        assert!(holds("&", Some("Sales, Marketing"), s("Marketing")));
        assert!(!holds("&", Some("Sales,Marketing"), s("marketing")));
        assert!(!holds("&", Some("Sales,Marketing"), s("Sale")));
        assert!(holds("!&", Some("Sales,Marketing"), s("HR")));
        assert!(!holds("!&", Some("Sales,Marketing"), s("Sales")));
    }

    #[test]
    fn integers_compare_as_integers() {
        assert!(holds("Greater_Than", Some("9"), Some(json!(10))));
        assert!(holds("Greater_Than", Some("9"), Some(json!("10"))));
        assert!(!holds("Greater_Than", Some("10"), Some(json!("10"))));
        assert!(holds("Greater_Than_OR_EQUALS", Some("10"), Some(json!(10))));
        assert!(!holds(
            "Greater_Than_OR_EQUALS",
            Some("11"),
            Some(json!(10))
        ));
        // Text comparison would say "9" > "10"; integer comparison does not.
        assert!(!holds("Greater_Than", Some("10"), Some(json!("9"))));
        assert!(!holds("Greater_Than", Some("1"), Some(json!("ten"))));
        assert!(!holds("Greater_Than", Some("1"), Some(json!(2.5))));
    }

    #[test]
    fn booleans_and_their_strings() {
        assert!(holds("IS TRUE", None, Some(json!(true))));
        assert!(holds("IS TRUE", None, Some(json!("TRUE"))));
        assert!(!holds("IS TRUE", None, Some(json!(false))));
        assert!(holds("IS FALSE", None, Some(json!("false"))));
        assert!(!holds("IS FALSE", None, Some(json!("no"))));
        assert!(!holds("IS TRUE", None, Some(json!("yes"))));
        assert!(holds("EQUALS", Some("True"), Some(json!(true))));
    }

    #[test]
    fn regexes_search_like_entra_examples() {
        let upn = Some(json!("ann@domain.com"));
        // The pattern from Entra's article, with its escaped `@`.
        assert!(holds("REGEX MATCH", Some(r".*\@domain.com"), upn.clone()));
        assert!(holds(
            "REGEX MATCH",
            Some("([1-9][0-9])"),
            Some(json!("ab42"))
        ));
        assert!(!holds("REGEX MATCH", Some("^[0-9]+$"), Some(json!("ab42"))));
        assert!(!holds("REGEX MATCH", Some("DOMAIN"), upn.clone()));
        assert!(holds("NOT REGEX MATCH", Some("DOMAIN"), upn.clone()));
        assert!(!holds("NOT REGEX MATCH", Some("domain"), upn));
        // A pattern that slipped past validation makes the clause false, not a panic.
        assert!(!holds("REGEX MATCH", Some("(unclosed"), Some(json!("x"))));
        assert!(!holds(
            "NOT REGEX MATCH",
            Some("(unclosed"),
            Some(json!("x"))
        ));
    }

    #[test]
    fn null_and_empty_are_false_except_for_null_tests() {
        for value in [None, Some(json!(null)), Some(json!("")), Some(json!([]))] {
            assert!(holds("IS NULL", None, value.clone()), "{value:?}");
            assert!(!holds("IS NOT NULL", None, value.clone()), "{value:?}");
            for (op, operand) in [
                ("EQUALS", Some("x")),
                ("NOT EQUALS", Some("x")),
                ("ENDS_WITH", Some("")),
                ("Includes", Some("")),
                ("&", Some("x")),
                ("!&", Some("x")),
                ("Greater_Than", Some("0")),
                ("Greater_Than_OR_EQUALS", Some("0")),
                ("IS TRUE", None),
                ("IS FALSE", None),
                ("REGEX MATCH", Some(".*")),
                ("NOT REGEX MATCH", Some("x")),
            ] {
                assert!(!holds(op, operand, value.clone()), "{op} on {value:?}");
            }
        }
        assert!(holds("IS NOT NULL", None, Some(json!("x"))));
        assert!(holds("IS NOT NULL", None, Some(json!(0))));
        assert!(!holds("IS NULL", None, Some(json!(false))));
    }

    #[test]
    fn multi_valued_attributes_match_on_any_value() {
        let v = Some(json!(["Sales", "HR"]));
        assert!(holds("EQUALS", Some("HR"), v.clone()));
        assert!(!holds("NOT EQUALS", Some("HR"), v.clone()));
        assert!(holds("NOT EQUALS", Some("IT"), v.clone()));
        assert!(holds("REGEX MATCH", Some("^H"), v.clone()));
        assert!(!holds("NOT REGEX MATCH", Some("^H"), v.clone()));
        assert!(holds("!&", Some("IT,Legal"), v));
        // Objects are present but not comparable.
        let manager = Some(json!({"id": "m1"}));
        assert!(holds("IS NOT NULL", None, manager.clone()));
        assert!(!holds("EQUALS", Some("m1"), manager.clone()));
        assert!(!holds("NOT EQUALS", Some("m1"), manager));
    }

    #[test]
    fn clauses_and_filters_combine_and_explain() {
        let sales = filter(
            Some("Sales"),
            vec![
                clause("department", "EQUALS", Some("Sales")),
                clause("country", "EQUALS", Some("FR")),
            ],
        );
        let contractors = filter(
            None,
            vec![clause("employeeType", "EQUALS", Some("Contractor"))],
        );
        let both = [sales.clone(), contractors];

        let fr_sales = attrs(json!({"department": "Sales", "country": "FR"}));
        let v = evaluate_filters(&fr_sales, &both);
        assert!(v.in_scope);
        assert_eq!(v.reason, "filter 'Sales' matched");

        // AND: one false clause fails the filter; OR: the second filter can still let it in.
        let de_sales = attrs(json!({"department": "Sales", "country": "DE"}));
        let v = evaluate_filters(&de_sales, &both);
        assert!(!v.in_scope);
        assert_eq!(
            v.reason,
            "filter 'Sales': country EQUALS \"FR\" is false; \
             filter 2: employeeType EQUALS \"Contractor\" is false (employeeType is empty)"
        );
        let contractor = attrs(json!({"department": "IT", "employeeType": "Contractor"}));
        let v = evaluate_filters(&contractor, &both);
        assert!(v.in_scope);
        assert_eq!(v.reason, "filter 2 matched");

        let v = evaluate_filters(&attrs(json!({"department": "sales"})), &[sales]);
        assert_eq!(
            v.reason,
            "filter 'Sales': department EQUALS \"Sales\" is false"
        );
    }

    #[test]
    fn compiled_filters_decide_like_the_one_shot_function() {
        let filters = vec![
            filter(
                Some("bad regex"),
                vec![clause("department", "REGEX MATCH", Some("(unclosed"))],
            ),
            filter(
                Some("mail"),
                vec![
                    clause("mail", "REGEX MATCH", Some("^[a-z]+@contoso\\.com$")),
                    clause("department", "NOT EQUALS", Some("Sales")),
                ],
            ),
            filter(
                Some("not contractors"),
                vec![clause("title", "NOT REGEX MATCH", Some("(?i)contractor"))],
            ),
        ];
        let compiled = CompiledFilters::new(&filters);
        assert_eq!(compiled.filters(), &filters[..]);
        for a in [
            json!({"mail": "ann@contoso.com", "department": "Eng"}),
            json!({"mail": "ann@contoso.com", "department": "Sales"}),
            json!({"mail": "Ann@contoso.com", "title": "Contractor"}),
            json!({"title": "Engineer"}),
            json!({"department": "(unclosed"}),
            json!({}),
        ] {
            let a = attrs(a);
            assert_eq!(
                compiled.evaluate(&a),
                evaluate_filters(&a, &filters),
                "{a:?}"
            );
        }
        let a = attrs(json!({"mail": "ann@contoso.com", "department": "Eng"}));
        assert_eq!(compiled.evaluate(&a).reason, "filter 'mail' matched");
        let a = attrs(json!({"department": "(unclosed"}));
        assert!(
            !compiled.evaluate(&a).in_scope,
            "a pattern that does not compile makes its clause false"
        );
    }
}
