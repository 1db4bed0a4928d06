//! The evaluator: Entra's functions over [`Value`]s, with null handling as documented.
//!
//! Pure by construction: the current time, the random seed and the tenant's default domain all
//! come from the [`Context`].

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Datelike, Months, TimeDelta, Utc};

use crate::ast::{CompareOp, Expr, Span};
use crate::check::{self, call_problem, unknown_function};
use crate::dates;
use crate::error::ExprError;
use crate::text::{self, Rng};
use crate::value::Value;

/// What an expression needs from the outside world.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Source attributes by their Entra name (`mail`, `IsSoftDeleted`, `extension_<app>_<x>` …).
    pub attrs: &'a BTreeMap<String, serde_json::Value>,
    /// The value of `Now()`.
    pub now: DateTime<Utc>,
    /// `Guid()` and `RandomString(…)` are a deterministic function of this seed and the call's
    /// position in the text.
    pub seed: u64,
    /// The tenant's default verified domain, for `DefaultDomain()`.
    pub default_domain: Option<&'a str>,
}

/// The result of evaluating a mapping expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Value(Value),
    /// `IgnoreFlowIfNullOrEmpty` met a null or empty value: do not send the target attribute.
    Ignore,
    /// `SelectUniqueValue`: the non-empty candidates in order; the engine sends the first one
    /// the target does not already have.
    Unique(Vec<Value>),
}

/// The SCIM `roles[].type` Entra sends for app role assignments.
pub const ROLE_TYPE: &str = "WindowsAzureActiveDirectoryRole";
/// The "Default Access" app role every assignment without a role has; it is not a role.
const DEFAULT_ACCESS_ROLE: &str = "00000000-0000-0000-0000-000000000000";

/// Evaluates a parsed expression for one source object.
pub fn eval(expr: &Expr, ctx: &Context) -> Result<Outcome, ExprError> {
    Evaluator::new(ctx, false).top(expr)
}

/// Every evaluated step, innermost first: the sub-expression's canonical text and its value or
/// error. Literals are omitted; anything containing `Redact(…)` shows as `[Redact]`.
pub fn trace(expr: &Expr, ctx: &Context) -> Vec<(String, Result<Value, String>)> {
    let mut ev = Evaluator::new(ctx, true);
    let _ = ev.top(expr);
    ev.steps
}

/// Why evaluation stopped early.
enum Stop {
    Ignore,
    Fail(ExprError),
}

impl From<ExprError> for Stop {
    fn from(e: ExprError) -> Self {
        Stop::Fail(e)
    }
}

type R<T> = Result<T, Stop>;

fn fail<T>(span: &Span, message: impl Into<String>) -> R<T> {
    Err(Stop::Fail(ExprError::at(span, message)))
}

struct Evaluator<'c, 'a> {
    ctx: &'c Context<'a>,
    tracing: bool,
    steps: Vec<(String, Result<Value, String>)>,
    /// A failure is recorded once, at the node where it happened, not again at every parent.
    recorded_stop: bool,
    inside_redact: usize,
}

impl<'c, 'a> Evaluator<'c, 'a> {
    fn new(ctx: &'c Context<'a>, tracing: bool) -> Self {
        Evaluator {
            ctx,
            tracing,
            steps: Vec::new(),
            recorded_stop: false,
            inside_redact: 0,
        }
    }

    fn top(&mut self, expr: &Expr) -> Result<Outcome, ExprError> {
        if let Expr::Call { name, args, span } = expr
            && name == "SelectUniqueValue"
        {
            self.check_call(name, args, span)
                .map_err(|e| self.record_fail(expr, e))?;
            let mut candidates = Vec::new();
            for rule in args.iter().flatten() {
                match self.value(rule) {
                    Ok(v) if !v.is_null_or_empty() => candidates.push(v),
                    Ok(_) | Err(Stop::Ignore) => {}
                    Err(Stop::Fail(e)) => return Err(e),
                }
            }
            self.record(expr, Ok(Value::List(candidates.clone())));
            return Ok(Outcome::Unique(candidates));
        }
        match self.value(expr) {
            Ok(v) => Ok(Outcome::Value(v)),
            Err(Stop::Ignore) => Ok(Outcome::Ignore),
            Err(Stop::Fail(e)) => Err(e),
        }
    }

    fn record_fail(&mut self, expr: &Expr, e: ExprError) -> ExprError {
        self.record(expr, Err(e.message.clone()));
        e
    }

    fn record(&mut self, expr: &Expr, result: Result<Value, String>) {
        if !self.tracing || self.inside_redact > 0 {
            return;
        }
        if matches!(
            expr,
            Expr::Str { .. } | Expr::Int { .. } | Expr::Word { .. }
        ) {
            return;
        }
        let shown = match result {
            Ok(_) if check::redacts(expr) => Ok(Value::Str("[Redact]".into())),
            other => other,
        };
        self.steps.push((expr.to_string(), shown));
    }

    fn value(&mut self, expr: &Expr) -> R<Value> {
        let result = self.value_inner(expr);
        if self.tracing {
            match &result {
                Ok(v) => self.record(expr, Ok(v.clone())),
                Err(stop) if !self.recorded_stop => {
                    self.recorded_stop = true;
                    let message = match stop {
                        Stop::Ignore => {
                            "null or empty: IgnoreFlowIfNullOrEmpty drops the attribute".to_string()
                        }
                        Stop::Fail(e) => e.to_string(),
                    };
                    self.record(expr, Err(message));
                }
                Err(_) => {}
            }
        }
        result
    }

    fn value_inner(&mut self, expr: &Expr) -> R<Value> {
        match expr {
            Expr::Attr { name, .. } => Ok(self.attr(name)),
            Expr::Str { value, .. } => Ok(Value::Str(value.clone())),
            Expr::Int { value, .. } => Ok(Value::Int(*value)),
            Expr::Word { value, .. } => Ok(Value::Str(value.clone())),
            Expr::Compare { op, lhs, rhs, span } => {
                let l = self.value(lhs)?;
                let r = self.value(rhs)?;
                compare(*op, &l, &r, span).map(Value::Bool)
            }
            Expr::Call { name, args, span } => {
                self.check_call(name, args, span)?;
                self.call(name, args, span)
            }
        }
    }

    fn attr(&self, name: &str) -> Value {
        self.ctx
            .attrs
            .get(name)
            .map_or(Value::Null, Value::from_json)
    }

    fn check_call(&self, name: &str, args: &[Option<Expr>], span: &Span) -> Result<(), ExprError> {
        let spec =
            check::function(name).ok_or_else(|| ExprError::at(span, unknown_function(name)))?;
        match call_problem(spec, args) {
            Some(problem) => Err(ExprError::at(span, problem)),
            None => Ok(()),
        }
    }

    /// Value of argument `i`; an empty or missing optional argument is null.
    fn arg(&mut self, args: &[Option<Expr>], i: usize) -> R<Value> {
        match args.get(i) {
            Some(Some(e)) => self.value(e),
            _ => Ok(Value::Null),
        }
    }

    /// Value of argument `i`, or `None` when it was left empty (Replace's modes depend on this).
    fn given(&mut self, args: &[Option<Expr>], i: usize) -> R<Option<Value>> {
        match args.get(i) {
            Some(Some(e)) => self.value(e).map(Some),
            _ => Ok(None),
        }
    }

    fn text_arg(
        &mut self,
        args: &[Option<Expr>],
        i: usize,
        f: &str,
        span: &Span,
    ) -> R<Option<String>> {
        let v = self.arg(args, i)?;
        text(&v, f, span)
    }

    fn int_arg(&mut self, args: &[Option<Expr>], i: usize, f: &str, span: &Span) -> R<Option<i64>> {
        let v = self.arg(args, i)?;
        int(&v, f, i, span)
    }

    fn required_int(&mut self, args: &[Option<Expr>], i: usize, f: &str, span: &Span) -> R<i64> {
        match self.int_arg(args, i, f, span)? {
            Some(n) => Ok(n),
            None => fail(
                span,
                format!("{f}: argument {} is null; a number is required", i + 1),
            ),
        }
    }

    fn date_arg(
        &mut self,
        args: &[Option<Expr>],
        i: usize,
        f: &str,
        span: &Span,
    ) -> R<Option<DateTime<Utc>>> {
        let v = self.arg(args, i)?;
        date(&v, f, span)
    }

    fn call(&mut self, name: &str, args: &[Option<Expr>], span: &Span) -> R<Value> {
        let s = span;
        match name {
            "Append" => {
                let a = self.text_arg(args, 0, name, s)?;
                let b = self.text_arg(args, 1, name, s)?;
                Ok(match (a, b) {
                    (None, None) => Value::Null,
                    (a, b) => Value::Str(a.unwrap_or_default() + &b.unwrap_or_default()),
                })
            }
            "AppRoleAssignmentsComplex" | "AssertiveAppRoleAssignmentsComplex" => {
                let v = self.arg(args, 0)?;
                let roles: Vec<Value> = assignments(&v, name, s)?
                    .into_iter()
                    .map(|(display, value)| role(false, display, value))
                    .collect();
                // The plain variant only ever adds roles, so "none" means "send nothing"; the
                // assertive one replaces the whole list, so "none" is an empty list.
                Ok(if roles.is_empty() && name == "AppRoleAssignmentsComplex" {
                    Value::Null
                } else {
                    Value::List(roles)
                })
            }
            "SingleAppRoleAssignment" => {
                let v = self.arg(args, 0)?;
                Ok(assignments(&v, name, s)?
                    .into_iter()
                    .next()
                    .map_or(Value::Null, |(_, value)| Value::Str(value)))
            }
            "BitAnd" => {
                let a = self.required_int(args, 0, name, s)?;
                let b = self.required_int(args, 1, name, s)?;
                Ok(Value::Int(a & b))
            }
            "CBool" => {
                let v = self.arg(args, 0)?;
                match v {
                    Value::Null => Ok(Value::Bool(false)),
                    v => match boolish(&v) {
                        Some(b) => Ok(Value::Bool(b)),
                        None => fail(
                            s,
                            format!("CBool: cannot read {v} as a boolean or a number"),
                        ),
                    },
                }
            }
            "CDate" => Ok(self
                .date_arg(args, 0, name, s)?
                .map_or(Value::Null, Value::Date)),
            "Coalesce" => {
                let last = args.len() - 1;
                for i in 0..last {
                    let v = self.arg(args, i)?;
                    if !v.is_null_or_empty() {
                        return Ok(v);
                    }
                }
                // The last argument is the default: returned as-is, so an explicit "" flows.
                self.arg(args, last)
            }
            "ConvertToBase64" => Ok(self.text_arg(args, 0, name, s)?.map_or(Value::Null, |t| {
                let utf16: Vec<u8> = t.encode_utf16().flat_map(u16::to_le_bytes).collect();
                Value::Str(base64::engine::general_purpose::STANDARD.encode(utf16))
            })),
            "ConvertToUTF8Hex" => Ok(self.text_arg(args, 0, name, s)?.map_or(Value::Null, |t| {
                Value::Str(t.bytes().map(|b| format!("{b:02X}")).collect())
            })),
            "Count" => Ok(Value::Int(match self.arg(args, 0)? {
                Value::Null => 0,
                Value::List(items) => items.len() as i64,
                _ => 1,
            })),
            "CStr" => Ok(self
                .text_arg(args, 0, name, s)?
                .map_or(Value::Null, Value::Str)),
            "DateAdd" => {
                let interval = self.text_arg(args, 0, name, s)?.unwrap_or_default();
                let n = self.required_int(args, 1, name, s)?;
                let Some(d) = self.date_arg(args, 2, name, s)? else {
                    return Ok(Value::Null);
                };
                date_add(&interval, n, d, s).map(Value::Date)
            }
            "DateDiff" => {
                let interval = self.text_arg(args, 0, name, s)?.unwrap_or_default();
                let d1 = self.date_arg(args, 1, name, s)?;
                let d2 = self.date_arg(args, 2, name, s)?;
                match (d1, d2) {
                    (Some(d1), Some(d2)) => date_diff(&interval, d1, d2, s).map(Value::Int),
                    _ => Ok(Value::Null),
                }
            }
            "DateFromNum" => match self.int_arg(args, 0, name, s)? {
                None => Ok(Value::Null),
                Some(n) => match dates::from_filetime(n) {
                    Some(d) => Ok(Value::Date(d)),
                    None => fail(s, format!("DateFromNum: {n} is not a valid AD date")),
                },
            },
            "DefaultDomain" => match self.ctx.default_domain {
                Some(d) => Ok(Value::Str(d.to_string())),
                None => fail(
                    s,
                    "DefaultDomain: the tenant has no default verified domain configured",
                ),
            },
            "FormatDateTime" => self.format_date_time(args, s),
            "Guid" => Ok(Value::Str(text::guid(&mut Rng::new(
                self.ctx.seed,
                s.start,
            )))),
            "IgnoreFlowIfNullOrEmpty" => {
                let v = self.arg(args, 0)?;
                if v.is_null_or_empty() {
                    Err(Stop::Ignore)
                } else {
                    Ok(v)
                }
            }
            "IIF" => self.iif(args, s),
            "InStr" => self.instr(args, s),
            "IsNull" => {
                let v = self.arg(args, 0)?;
                Ok(Value::Bool(
                    matches!(v, Value::Null) || v == Value::List(vec![]),
                ))
            }
            "IsNullOrEmpty" => Ok(Value::Bool(self.arg(args, 0)?.is_null_or_empty())),
            "IsPresent" => Ok(Value::Bool(!self.arg(args, 0)?.is_null_or_empty())),
            "IsString" => Ok(Value::Bool(matches!(
                self.arg(args, 0)?,
                Value::Str(_) | Value::Bool(_) | Value::Int(_) | Value::Date(_)
            ))),
            "Item" => {
                let v = self.arg(args, 0)?;
                let index = self.required_int(args, 1, name, s)?;
                if index < 1 {
                    return fail(
                        s,
                        format!("Item: index {index} is invalid; the first item is 1"),
                    );
                }
                let i = (index - 1) as usize;
                Ok(match v {
                    Value::List(items) => items.into_iter().nth(i).unwrap_or(Value::Null),
                    Value::Null => Value::Null,
                    single if i == 0 => single,
                    _ => Value::Null,
                })
            }
            "Join" => {
                let sep = self.text_arg(args, 0, name, s)?.unwrap_or_default();
                let mut parts = Vec::new();
                for i in 1..args.len() {
                    let v = self.arg(args, i)?;
                    let items = match v {
                        Value::List(items) => items,
                        other => vec![other],
                    };
                    parts.extend(
                        items
                            .iter()
                            .filter_map(Value::to_text)
                            .filter(|t| !t.is_empty()),
                    );
                }
                Ok(if parts.is_empty() {
                    Value::Null
                } else {
                    Value::Str(parts.join(&sep))
                })
            }
            "Left" => {
                let t = self.text_arg(args, 0, name, s)?.unwrap_or_default();
                let n = self.required_int(args, 1, name, s)?;
                Ok(Value::Str(match n {
                    0 => String::new(),
                    n if n < 0 => t,
                    n => t.chars().take(n as usize).collect(),
                }))
            }
            "Len" => Ok(Value::Int(
                self.text_arg(args, 0, name, s)?
                    .map_or(0, |t| t.chars().count() as i64),
            )),
            "Mid" => {
                let t = self.text_arg(args, 0, name, s)?.unwrap_or_default();
                let start = self.required_int(args, 1, name, s)?;
                let len = self.required_int(args, 2, name, s)?;
                if start < 1 {
                    return fail(
                        s,
                        format!("Mid: start {start} is invalid; the first character is 1"),
                    );
                }
                if len < 0 {
                    return fail(s, format!("Mid: length {len} is negative"));
                }
                Ok(Value::Str(
                    t.chars()
                        .skip(start as usize - 1)
                        .take(len as usize)
                        .collect(),
                ))
            }
            "NormalizeDiacritics" => Ok(self
                .text_arg(args, 0, name, s)?
                .map_or(Value::Null, |t| Value::Str(text::normalize_diacritics(&t)))),
            "Not" => Ok(Value::Bool(boolish(&self.arg(args, 0)?) != Some(true))),
            "Now" => Ok(Value::Date(self.ctx.now)),
            "NumFromDate" => match self.date_arg(args, 0, name, s)? {
                None => Ok(Value::Null),
                Some(d) => match dates::to_filetime(&d) {
                    Some(n) => Ok(Value::Int(n)),
                    None => fail(s, "NumFromDate: date is outside the AD date range"),
                },
            },
            "PCase" => {
                let t = self.text_arg(args, 0, name, s)?;
                let seps = self.text_arg(args, 1, name, s)?;
                Ok(t.map_or(Value::Null, |t| {
                    Value::Str(text::proper_case(&t, seps.as_deref()))
                }))
            }
            "RandomString" => {
                let mut n = [0usize; 5];
                for (i, slot) in n.iter_mut().enumerate() {
                    let v = self.required_int(args, i, name, s)?;
                    *slot = usize::try_from(v).or_else(|_| {
                        fail(
                            s,
                            format!("RandomString: argument {} must not be negative", i + 1),
                        )
                    })?;
                }
                let avoid = self.text_arg(args, 5, name, s)?.unwrap_or_default();
                let mut rng = Rng::new(self.ctx.seed, s.start);
                match text::random_string(&mut rng, n[0], [n[1], n[2], n[3], n[4]], &avoid) {
                    Ok(t) => Ok(Value::Str(t)),
                    Err(e) => fail(s, e),
                }
            }
            "Redact" => {
                self.inside_redact += 1;
                let v = self.arg(args, 0);
                self.inside_redact -= 1;
                v
            }
            "RemoveDuplicates" => Ok(match self.arg(args, 0)? {
                Value::List(items) => {
                    let mut unique: Vec<Value> = Vec::with_capacity(items.len());
                    for item in items {
                        if !unique.contains(&item) {
                            unique.push(item);
                        }
                    }
                    Value::List(unique)
                }
                other => other,
            }),
            "Replace" => self.replace(args, s),
            "SelectUniqueValue" => fail(
                s,
                "SelectUniqueValue must be the whole expression; it cannot be nested",
            ),
            "Split" => {
                let t = self.text_arg(args, 0, name, s)?;
                let delim = self.text_arg(args, 1, name, s)?.unwrap_or_default();
                Ok(match t {
                    None => Value::Null,
                    Some(t) if delim.is_empty() => Value::List(vec![Value::Str(t)]),
                    Some(t) => Value::List(
                        t.split(delim.as_str())
                            .map(|p| Value::Str(p.to_string()))
                            .collect(),
                    ),
                })
            }
            "StripSpaces" => Ok(self
                .text_arg(args, 0, name, s)?
                .map_or(Value::Null, |t| Value::Str(t.replace(' ', "")))),
            "Switch" => {
                let source = self.text_arg(args, 0, name, s)?.unwrap_or_default();
                for pair in (2..args.len()).step_by(2) {
                    let key = self.text_arg(args, pair, name, s)?.unwrap_or_default();
                    if key == source {
                        return self.arg(args, pair + 1);
                    }
                }
                self.arg(args, 1)
            }
            "ToLower" | "ToUpper" => {
                let t = self.text_arg(args, 0, name, s)?;
                let culture = self.text_arg(args, 1, name, s)?;
                Ok(t.map_or(Value::Null, |t| {
                    Value::Str(text::change_case(&t, name == "ToUpper", culture.as_deref()))
                }))
            }
            "Word" => {
                let t = self.text_arg(args, 0, name, s)?.unwrap_or_default();
                let n = self.required_int(args, 1, name, s)?;
                let delims = self.text_arg(args, 2, name, s)?.unwrap_or_default();
                if n < 1 {
                    return Ok(Value::Str(String::new()));
                }
                Ok(Value::Str(
                    t.split(|c| delims.contains(c))
                        .filter(|w| !w.is_empty())
                        .nth((n - 1) as usize)
                        .unwrap_or_default()
                        .to_string(),
                ))
            }
            other => fail(s, unknown_function(other)),
        }
    }

    fn format_date_time(&mut self, args: &[Option<Expr>], s: &Span) -> R<Value> {
        let f = "FormatDateTime";
        let source = self.arg(args, 0)?;
        // dateTimeStyles only matter for local time zones; Entra works in UTC, so every style
        // gives the same instant here.
        let _styles = self.text_arg(args, 1, f, s)?;
        let input = self.text_arg(args, 2, f, s)?.filter(|t| !t.is_empty());
        let output = self.text_arg(args, 3, f, s)?.unwrap_or_default();
        let d = match source {
            Value::Null => return Ok(Value::Null),
            Value::Date(d) => d,
            other => {
                let Some(t) = text(&other, f, s)? else {
                    return Ok(Value::Null);
                };
                match input {
                    Some(fmt) => match dates::parse_exact(&t, &fmt) {
                        Ok(d) => d,
                        Err(e) => return fail(s, format!("FormatDateTime: {e}")),
                    },
                    None => match dates::parse_flexible(&t) {
                        Some(d) => d,
                        None => {
                            return fail(
                                s,
                                format!("FormatDateTime: cannot read \"{t}\" as a date"),
                            );
                        }
                    },
                }
            }
        };
        match dates::format(&d, &output) {
            Ok(t) => Ok(Value::Str(t)),
            Err(e) => fail(s, format!("FormatDateTime: {e}")),
        }
    }

    fn iif(&mut self, args: &[Option<Expr>], s: &Span) -> R<Value> {
        let Some(Some(cond)) = args.first() else {
            return fail(s, "IIF: the condition is required");
        };
        // Entra fails the condition when a source attribute in it is null or empty, even inside
        // IsNullOrEmpty/IsPresent; the documented workaround is Switch with a "" key.
        for name in check::attributes(cond) {
            if self.attr(&name).is_null_or_empty() {
                return fail(
                    cond.span(),
                    format!(
                        "IIF condition reads [{name}], which is null or empty, and Entra fails such conditions; use Switch([{name}], …, \"\", …) to handle empty values"
                    ),
                );
            }
        }
        let v = self.value(cond)?;
        let b = match &v {
            Value::Null => return fail(cond.span(), "IIF condition evaluated to null"),
            v => boolish(v),
        };
        match b {
            Some(true) => self.arg(args, 1),
            Some(false) => self.arg(args, 2),
            None => fail(
                cond.span(),
                format!("IIF condition must be True or False, got {v}"),
            ),
        }
    }

    fn instr(&mut self, args: &[Option<Expr>], s: &Span) -> R<Value> {
        let f = "InStr";
        let hay = self.text_arg(args, 0, f, s)?;
        let needle = self.text_arg(args, 1, f, s)?.unwrap_or_default();
        let start = self.int_arg(args, 2, f, s)?.unwrap_or(1);
        let compare = self.text_arg(args, 3, f, s)?;
        if start < 1 {
            return fail(
                s,
                format!("InStr: start {start} is invalid; the first character is 1"),
            );
        }
        let ignore_case = match compare.as_deref() {
            None | Some("") | Some("vbBinaryCompare") | Some("0") => false,
            Some("vbTextCompare") | Some("1") => true,
            Some(other) => {
                return fail(
                    s,
                    format!(
                        "InStr: compare type must be vbBinaryCompare or vbTextCompare, got \"{other}\""
                    ),
                );
            }
        };
        let Some(hay) = hay else {
            return Ok(Value::Int(0));
        };
        let fold = |t: &str| -> Vec<char> {
            if ignore_case {
                text::change_case(t, false, None).chars().collect()
            } else {
                t.chars().collect()
            }
        };
        let (h, n) = (fold(&hay), fold(&needle));
        let from = (start - 1) as usize;
        if from > h.len() {
            return Ok(Value::Int(0));
        }
        let found = (from..=h.len().saturating_sub(n.len()))
            .find(|&i| i + n.len() <= h.len() && h[i..i + n.len()] == n[..]);
        Ok(Value::Int(found.map_or(0, |i| i as i64 + 1)))
    }

    fn replace(&mut self, args: &[Option<Expr>], s: &Span) -> R<Value> {
        let f = "Replace";
        let source_v = self.arg(args, 0)?;
        let source = text(&source_v, f, s)?;
        let given_text = |ev: &mut Self, i: usize| -> R<Option<String>> {
            match ev.given(args, i)? {
                None => Ok(None),
                Some(v) => Ok(Some(text(&v, f, s)?.unwrap_or_default())),
            }
        };
        let old = given_text(self, 1)?;
        let pattern = given_text(self, 2)?;
        let group = given_text(self, 3)?;
        let replacement = given_text(self, 4)?;
        let replacement_attr = self.given(args, 5)?;
        let template = given_text(self, 6)?;

        if let (Some(old), Some(template)) = (&old, &template) {
            return Ok(source.map_or(Value::Null, |src| {
                Value::Str(replace_literal(template, old, &src))
            }));
        }
        if let (Some(old), Some(replacement)) = (&old, &replacement) {
            return Ok(source.map_or(Value::Null, |src| {
                Value::Str(replace_literal(&src, old, replacement))
            }));
        }
        let Some(pattern) = pattern else {
            return fail(
                s,
                "Replace: give oldValue with replacementValue or template, or a regexPattern",
            );
        };
        let re = match regex::RegexBuilder::new(&pattern)
            .size_limit(1 << 20)
            .build()
        {
            Ok(re) => re,
            Err(e) => return fail(s, format!("Replace: invalid regexPattern: {e}")),
        };
        let group_index = |name: &str| -> R<usize> {
            re.capture_names()
                .position(|n| n == Some(name))
                .or_else(|| {
                    name.parse::<usize>()
                        .ok()
                        .filter(|&i| i < re.captures_len())
                })
                .map_or_else(
                    || {
                        fail(
                            s,
                            format!("Replace: regexPattern has no group named \"{name}\""),
                        )
                    },
                    Ok,
                )
        };
        if let (Some(group), Some(attr)) = (&group, &replacement_attr) {
            if source.as_deref().is_some_and(|t| !t.is_empty()) {
                return Ok(source_v);
            }
            let gi = group_index(group)?;
            let Some(other) = text(attr, f, s)? else {
                return Ok(Value::Null);
            };
            return Ok(re
                .captures(&other)
                .and_then(|c| c.get(gi))
                .map_or(Value::Null, |m| Value::Str(m.as_str().to_string())));
        }
        let Some(replacement) = replacement else {
            return fail(
                s,
                "Replace: regexPattern needs a replacementValue (or regexGroupName with replacementAttributeName)",
            );
        };
        let Some(src) = source else {
            return Ok(Value::Null);
        };
        if let Some(group) = &group {
            let gi = group_index(group)?;
            let mut out = String::with_capacity(src.len());
            let mut last = 0;
            for caps in re.captures_iter(&src) {
                if let Some(m) = caps.get(gi) {
                    out.push_str(&src[last..m.start()]);
                    out.push_str(&replacement);
                    last = m.end();
                }
            }
            out.push_str(&src[last..]);
            return Ok(Value::Str(out));
        }
        Ok(Value::Str(
            re.replace_all(&src, replacement.as_str()).into_owned(),
        ))
    }
}

/// All occurrences, case-sensitive; an empty `old` leaves the text unchanged (as .NET refuses it).
fn replace_literal(text: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        text.to_string()
    } else {
        text.replace(old, new)
    }
}

/// The single string form of a value; a multi-valued one is an error where one value is needed.
fn text(v: &Value, f: &str, span: &Span) -> R<Option<String>> {
    match v {
        Value::List(items) if items.len() > 1 => fail(
            span,
            format!(
                "{f}: got a multi-valued attribute with {} values where one value is expected",
                items.len()
            ),
        ),
        v => Ok(v.to_text()),
    }
}

fn int(v: &Value, f: &str, i: usize, span: &Span) -> R<Option<i64>> {
    let t = match v {
        Value::Int(n) => return Ok(Some(*n)),
        Value::Null => return Ok(None),
        other => text(other, f, span)?,
    };
    let Some(t) = t else { return Ok(None) };
    let trimmed = t.trim();
    let parsed = match trimmed
        .strip_prefix("&H")
        .or_else(|| trimmed.strip_prefix("&h"))
    {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => trimmed.parse::<i64>().ok(),
    };
    match parsed {
        Some(n) => Ok(Some(n)),
        None => fail(
            span,
            format!(
                "{f}: argument {} must be a whole number, got \"{t}\"",
                i + 1
            ),
        ),
    }
}

fn date(v: &Value, f: &str, span: &Span) -> R<Option<DateTime<Utc>>> {
    match v {
        Value::Date(d) => Ok(Some(*d)),
        Value::Null => Ok(None),
        other => match text(other, f, span)? {
            None => Ok(None),
            Some(t) => match dates::parse_flexible(&t) {
                Some(d) => Ok(Some(d)),
                None => fail(span, format!("{f}: cannot read \"{t}\" as a date")),
            },
        },
    }
}

/// `True`/`False` (any case), booleans, and numbers (non-zero is true).
fn boolish(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(n) => Some(*n != 0),
        Value::Str(t) => {
            let t = t.trim();
            if t.eq_ignore_ascii_case("true") {
                Some(true)
            } else if t.eq_ignore_ascii_case("false") {
                Some(false)
            } else {
                t.parse::<f64>().ok().map(|n| n != 0.0)
            }
        }
        Value::List(items) if items.len() == 1 => boolish(&items[0]),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(n) => Some(*n as f64),
        Value::Str(t) => t.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// `=`/`<>` compare text case-sensitively (numbers numerically when either side is a number,
/// booleans as booleans); ordering compares numbers, then dates, then text ordinally.
fn compare(op: CompareOp, l: &Value, r: &Value, span: &Span) -> R<bool> {
    use std::cmp::Ordering;
    let (l_null, r_null) = (matches!(l, Value::Null), matches!(r, Value::Null));
    if l_null || r_null {
        return match op {
            CompareOp::Eq => Ok(l_null && r_null),
            CompareOp::Ne => Ok(!(l_null && r_null)),
            _ => fail(span, format!("cannot compare null with '{}'", op.as_str())),
        };
    }
    let ordering: Ordering = if let (Value::Bool(_), _) | (_, Value::Bool(_)) = (l, r) {
        match (boolish(l), boolish(r)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => return Ok(op == CompareOp::Ne),
        }
    } else if let (Some(a), Some(b)) = (number(l), number(r))
        && (matches!(l, Value::Int(_)) || matches!(r, Value::Int(_)) || !op_is_equality(op))
    {
        a.partial_cmp(&b).unwrap_or(Ordering::Equal)
    } else if let (Value::Date(a), b) | (b, Value::Date(a)) = (l, r) {
        let other = date(b, "comparison", span)?;
        let Some(other) = other else {
            return fail(span, "cannot compare a date with null");
        };
        let ord = a.cmp(&other);
        if matches!(l, Value::Date(_)) {
            ord
        } else {
            ord.reverse()
        }
    } else {
        let (a, b) = (text(l, "comparison", span)?, text(r, "comparison", span)?);
        a.unwrap_or_default().cmp(&b.unwrap_or_default())
    };
    Ok(match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
    })
}

fn op_is_equality(op: CompareOp) -> bool {
    matches!(op, CompareOp::Eq | CompareOp::Ne)
}

/// `[appRoleAssignments]` as (display, value) pairs, skipping the "Default Access" role.
fn assignments(v: &Value, f: &str, span: &Span) -> R<Vec<(String, String)>> {
    let items: Vec<&Value> = match v {
        Value::Null => vec![],
        Value::List(items) => items.iter().collect(),
        Value::Object(_) => vec![v],
        other => {
            return fail(
                span,
                format!("{f}: expected [appRoleAssignments] (a list of assignments), got {other}"),
            );
        }
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for item in items {
        let Value::Object(map) = item else {
            return fail(
                span,
                format!("{f}: an app role assignment must be an object, got {item}"),
            );
        };
        let field = |k: &str| {
            map.get(k)
                .and_then(Value::to_text)
                .filter(|t| !t.is_empty())
        };
        let id = field("appRoleId");
        if id.as_deref() == Some(DEFAULT_ACCESS_ROLE) {
            continue;
        }
        let value = field("value")
            .or_else(|| field("displayName"))
            .or_else(|| id.clone());
        let display = field("displayName").or_else(|| field("value")).or(id);
        if let (Some(display), Some(value)) = (display, value)
            && !out.iter().any(|(_, v)| *v == value)
        {
            out.push((display, value));
        }
    }
    Ok(out)
}

/// One SCIM `roles` entry as Entra sends it.
fn role(primary: bool, display: String, value: String) -> Value {
    Value::Object(BTreeMap::from([
        ("primary".to_string(), Value::Bool(primary)),
        ("type".to_string(), Value::Str(ROLE_TYPE.to_string())),
        ("display".to_string(), Value::Str(display)),
        ("value".to_string(), Value::Str(value)),
    ]))
}

fn date_add(interval: &str, n: i64, d: DateTime<Utc>, s: &Span) -> R<DateTime<Utc>> {
    let months = |k: i64| -> Option<DateTime<Utc>> {
        let total = n.checked_mul(k)?;
        let m = Months::new(u32::try_from(total.unsigned_abs()).ok()?);
        if total >= 0 {
            d.checked_add_months(m)
        } else {
            d.checked_sub_months(m)
        }
    };
    let delta = |secs: i64| {
        n.checked_mul(secs)
            .and_then(TimeDelta::try_seconds)
            .and_then(|t| d.checked_add_signed(t))
    };
    let result = match interval {
        "yyyy" => months(12),
        "q" => months(3),
        "m" => months(1),
        "d" | "y" | "w" => delta(86_400),
        "ww" => delta(7 * 86_400),
        "h" => delta(3_600),
        "n" => delta(60),
        "s" => delta(1),
        other => {
            return fail(
                s,
                format!("DateAdd: unknown interval \"{other}\"; use yyyy, m, d, ww, h, n or s"),
            );
        }
    };
    result.map_or_else(|| fail(s, "DateAdd: the result is out of range"), Ok)
}

/// VB.NET `DateDiff`: calendar boundaries for years/quarters/months, truncated elapsed time for
/// days/hours/minutes/seconds, Sunday-started weeks for `ww`.
fn date_diff(interval: &str, d1: DateTime<Utc>, d2: DateTime<Utc>, s: &Span) -> R<i64> {
    let elapsed = |unit: i64| (d2 - d1).num_seconds() / unit;
    Ok(match interval {
        "yyyy" => i64::from(d2.year() - d1.year()),
        "q" => {
            let q = |d: &DateTime<Utc>| i64::from(d.year()) * 4 + i64::from(d.month0() / 3);
            q(&d2) - q(&d1)
        }
        "m" => {
            let m = |d: &DateTime<Utc>| i64::from(d.year()) * 12 + i64::from(d.month0());
            m(&d2) - m(&d1)
        }
        "d" | "y" => elapsed(86_400),
        "w" => elapsed(86_400) / 7,
        "ww" => {
            let sunday = |d: DateTime<Utc>| {
                let back = i64::from(dates::naive(&d).weekday().num_days_from_sunday());
                d.checked_sub_signed(TimeDelta::days(back))
            };
            match (sunday(d1), sunday(d2)) {
                (Some(a), Some(b)) => (b - a).num_seconds() / 86_400 / 7,
                _ => return fail(s, "DateDiff: date is out of range"),
            }
        }
        "h" => elapsed(3_600),
        "n" => elapsed(60),
        "s" => elapsed(1),
        other => {
            return fail(
                s,
                format!("DateDiff: unknown interval \"{other}\"; use yyyy, m, d, ww, h, n or s"),
            );
        }
    })
}
