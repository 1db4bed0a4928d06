//! The syntax tree and its canonical printed form.
//!
//! `Display` prints the canonical text: `Name(a, b)`, `[attr]`, `"str"` (escaping `\` and `"`),
//! integers in decimal, words bare, `lhs = rhs` with single spaces and empty optional arguments as
//! nothing between commas. Parsing that text gives back the same tree (see [`Expr::eq_ignore_spans`]).

use std::fmt;

/// Where a node sits in the source text: byte offsets `start..end` and the 1-based line and
/// column (in characters) of `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub column: u32,
}

/// A comparison operator allowed inside an argument: `= <> > >= < <=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
        }
    }
}

/// One node of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `Name(arg, …)`; `None` is an optional argument left empty between commas.
    Call {
        name: String,
        args: Vec<Option<Expr>>,
        span: Span,
    },
    /// `[attributeName]`: a source attribute.
    Attr { name: String, span: Span },
    /// `"text"` with `\"` and `\\` already unescaped.
    Str { value: String, span: Span },
    /// A decimal integer (optionally negative) or an `&H` hexadecimal literal.
    Int { value: i64, span: Span },
    /// A bare word such as `vbTextCompare`, or a decimal literal such as `42568.75` kept as its
    /// text (the language has no floating-point type; such literals evaluate to their text).
    Word { value: String, span: Span },
    /// `lhs op rhs`, only meaningful as an `IIF`/`CBool` condition.
    Compare {
        op: CompareOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        span: Span,
    },
}

impl Expr {
    pub fn span(&self) -> &Span {
        match self {
            Expr::Call { span, .. }
            | Expr::Attr { span, .. }
            | Expr::Str { span, .. }
            | Expr::Int { span, .. }
            | Expr::Word { span, .. }
            | Expr::Compare { span, .. } => span,
        }
    }

    /// Structural equality that ignores positions, e.g. for `parse(&e.to_string())`.
    pub fn eq_ignore_spans(&self, other: &Expr) -> bool {
        match (self, other) {
            (
                Expr::Call {
                    name: a, args: x, ..
                },
                Expr::Call {
                    name: b, args: y, ..
                },
            ) => {
                a == b
                    && x.len() == y.len()
                    && x.iter().zip(y).all(|(p, q)| match (p, q) {
                        (None, None) => true,
                        (Some(p), Some(q)) => p.eq_ignore_spans(q),
                        _ => false,
                    })
            }
            (Expr::Attr { name: a, .. }, Expr::Attr { name: b, .. }) => a == b,
            (Expr::Str { value: a, .. }, Expr::Str { value: b, .. }) => a == b,
            (Expr::Int { value: a, .. }, Expr::Int { value: b, .. }) => a == b,
            (Expr::Word { value: a, .. }, Expr::Word { value: b, .. }) => a == b,
            (
                Expr::Compare {
                    op: o1,
                    lhs: l1,
                    rhs: r1,
                    ..
                },
                Expr::Compare {
                    op: o2,
                    lhs: l2,
                    rhs: r2,
                    ..
                },
            ) => o1 == o2 && l1.eq_ignore_spans(l2) && r1.eq_ignore_spans(r2),
            _ => false,
        }
    }

    /// Visits this node and every node below it, parents before children.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Call { args, .. } => args.iter().flatten().for_each(|a| a.walk(f)),
            Expr::Compare { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            _ => {}
        }
    }
}

/// Writes `s` as a string literal, escaping only what the lexer unescapes.
pub(crate) fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Call { name, args, .. } => {
                write!(f, "{name}(")?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                        // Keep `, )` and `, ,` readable while staying re-parseable.
                        f.write_str(" ")?;
                    }
                    if let Some(arg) = arg {
                        write!(f, "{arg}")?;
                    }
                }
                f.write_str(")")
            }
            Expr::Attr { name, .. } => write!(f, "[{name}]"),
            Expr::Str { value, .. } => write_quoted(f, value),
            Expr::Int { value, .. } => write!(f, "{value}"),
            Expr::Word { value, .. } => f.write_str(value),
            Expr::Compare { op, lhs, rhs, .. } => write!(f, "{lhs} {} {rhs}", op.as_str()),
        }
    }
}
