//! The one error type of the crate: a position plus a sentence, shown as `line:col: message`.

use crate::ast::Span;

/// A parse, check or evaluation error, located at a 1-based line and column of the expression text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ExprError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl ExprError {
    pub(crate) fn at(span: &Span, message: impl Into<String>) -> Self {
        ExprError {
            line: span.line,
            column: span.column,
            message: message.into(),
        }
    }
}
