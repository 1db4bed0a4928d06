//! Hand-written recursive-descent parser with exact positions in every error.
//!
//! Grammar (whitespace, including newlines, allowed between tokens):
//! ```text
//! expr    := primary (op primary)?            op := = | <> | > | >= | < | <=
//! primary := Name "(" args? ")" | "[" attr "]" | "\"" chars "\"" | int | &Hhex | decimal | word
//! args    := slot ("," slot)*                 slot := expr | (nothing: an empty optional argument)
//! ```

use crate::ast::{CompareOp, Expr, Span};
use crate::error::ExprError;

/// Entra rejects expressions longer than this many characters.
pub const MAX_LEN: usize = 10_000;
/// Deeper nesting than this is refused so that no input can exhaust the stack.
pub const MAX_DEPTH: usize = 100;

/// Parses one expression. Errors carry the 1-based line and column of the offending character.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    if let Some((byte, _)) = text.char_indices().nth(MAX_LEN) {
        let mut p = Parser::new(text);
        while p.pos < byte {
            p.bump();
        }
        return Err(p.error(format!(
            "expression is longer than {MAX_LEN} characters (Entra's limit)"
        )));
    }
    let mut p = Parser::new(text);
    p.skip_ws();
    if p.peek().is_none() {
        return Err(p.error("empty expression"));
    }
    let expr = p.expr()?;
    p.skip_ws();
    if let Some(c) = p.peek() {
        return Err(p.error(format!(
            "unexpected {} after the end of the expression",
            describe(c)
        )));
    }
    Ok(expr)
}

fn describe(c: char) -> String {
    match c {
        '\n' => "line break".to_string(),
        c if c.is_control() => format!("control character U+{:04X}", c as u32),
        c => format!("'{c}'"),
    }
}

#[derive(Clone, Copy)]
struct Mark {
    pos: usize,
    line: u32,
    column: u32,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
    column: u32,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            pos: 0,
            line: 1,
            column: 1,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.src[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            line: self.line,
            column: self.column,
        }
    }

    fn reset(&mut self, m: Mark) {
        self.pos = m.pos;
        self.line = m.line;
        self.column = m.column;
    }

    fn span_from(&self, m: Mark) -> Span {
        Span {
            start: m.pos,
            end: self.pos,
            line: m.line,
            column: m.column,
        }
    }

    fn error(&self, message: impl Into<String>) -> ExprError {
        ExprError {
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }

    fn error_at(m: Mark, message: impl Into<String>) -> ExprError {
        ExprError {
            line: m.line,
            column: m.column,
            message: message.into(),
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        let start = self.mark();
        let lhs = self.primary()?;
        self.skip_ws();
        let Some(op) = self.compare_op() else {
            return Ok(lhs);
        };
        let rhs = self.primary()?;
        let span = self.span_from(start);
        let after = self.mark();
        self.skip_ws();
        if self.compare_op().is_some() {
            return Err(Self::error_at(
                after,
                "comparisons cannot be chained; nest IIF calls instead (there is no AND/OR)",
            ));
        }
        self.reset(after);
        Ok(Expr::Compare {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            span,
        })
    }

    fn compare_op(&mut self) -> Option<CompareOp> {
        let op = match (self.peek()?, self.peek2()) {
            ('<', Some('>')) => (CompareOp::Ne, 2),
            ('<', Some('=')) => (CompareOp::Le, 2),
            ('>', Some('=')) => (CompareOp::Ge, 2),
            ('<', _) => (CompareOp::Lt, 1),
            ('>', _) => (CompareOp::Gt, 1),
            ('=', _) => (CompareOp::Eq, 1),
            _ => return None,
        };
        for _ in 0..op.1 {
            self.bump();
        }
        Some(op.0)
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        self.skip_ws();
        let start = self.mark();
        match self.peek() {
            None => Err(self.error(
                "unexpected end of expression; expected a function call, [attribute], \"string\" or number",
            )),
            Some('[') => self.attribute(start),
            Some('"') => self.string(start),
            Some('&') => self.hex(start),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(start),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => self.name(start),
            Some('\'') => Err(self.error("string literals use double quotes (\"…\"), not '")),
            Some(c) => Err(self.error(format!(
                "unexpected {}; expected a function call, [attribute], \"string\" or number",
                describe(c)
            ))),
        }
    }

    fn attribute(&mut self, start: Mark) -> Result<Expr, ExprError> {
        self.bump();
        let body = self.pos;
        loop {
            match self.peek() {
                Some(']') => break,
                None | Some('\n') | Some('[') => {
                    return Err(Self::error_at(
                        start,
                        "unterminated attribute reference: '[' without a matching ']'",
                    ));
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
        let name = self.src[body..self.pos].trim().to_string();
        self.bump();
        if name.is_empty() {
            return Err(Self::error_at(start, "empty attribute name in []"));
        }
        Ok(Expr::Attr {
            name,
            span: self.span_from(start),
        })
    }

    fn string(&mut self, start: Mark) -> Result<Expr, ExprError> {
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(Self::error_at(
                        start,
                        "unterminated string literal: '\"' without a closing '\"'",
                    ));
                }
                Some('"') => break,
                Some('\\') => match self.peek() {
                    Some(c @ ('"' | '\\')) => {
                        self.bump();
                        value.push(c);
                    }
                    // Any other backslash is kept as written, so regex patterns such as
                    // "\d" still work when an admin forgot to double the backslash.
                    _ => value.push('\\'),
                },
                Some(c) => value.push(c),
            }
        }
        Ok(Expr::Str {
            value,
            span: self.span_from(start),
        })
    }

    fn hex(&mut self, start: Mark) -> Result<Expr, ExprError> {
        self.bump();
        if !matches!(self.peek(), Some('H' | 'h')) {
            return Err(
                self.error("expected 'H' after '&' (hexadecimal literals are written &HFF)")
            );
        }
        self.bump();
        let digits = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
            self.bump();
        }
        let text = &self.src[digits..self.pos];
        if text.is_empty() {
            return Err(self.error("expected hexadecimal digits after '&H'"));
        }
        let value = i64::from_str_radix(text, 16)
            .map_err(|_| Self::error_at(start, "hexadecimal literal is out of range"))?;
        Ok(Expr::Int {
            value,
            span: self.span_from(start),
        })
    }

    fn number(&mut self, start: Mark) -> Result<Expr, ExprError> {
        if self.peek() == Some('-') {
            self.bump();
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error("expected a digit after '-'"));
            }
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
            return Ok(Expr::Word {
                value: self.src[start.pos..self.pos].to_string(),
                span: self.span_from(start),
            });
        }
        let text = &self.src[start.pos..self.pos];
        let value = text
            .parse::<i64>()
            .map_err(|_| Self::error_at(start, "integer literal is out of range"))?;
        Ok(Expr::Int {
            value,
            span: self.span_from(start),
        })
    }

    fn name(&mut self, start: Mark) -> Result<Expr, ExprError> {
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.bump();
        }
        let name = self.src[start.pos..self.pos].to_string();
        let after_name = self.mark();
        self.skip_ws();
        if self.peek() != Some('(') {
            self.reset(after_name);
            return Ok(Expr::Word {
                value: name,
                span: self.span_from(start),
            });
        }
        self.bump();
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Self::error_at(
                start,
                format!("functions are nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.bump();
        } else {
            loop {
                self.skip_ws();
                let arg = match self.peek() {
                    Some(',' | ')') => None,
                    _ => Some(self.expr()?),
                };
                args.push(arg);
                self.skip_ws();
                match self.peek() {
                    Some(',') => {
                        self.bump();
                    }
                    Some(')') => {
                        self.bump();
                        break;
                    }
                    None => {
                        return Err(self.error(format!(
                            "missing ')' to close {name}( opened at {}:{}",
                            start.line, start.column
                        )));
                    }
                    Some('!') if self.peek2() == Some('=') => {
                        return Err(self.error("'!=' is not an operator; use '<>' for not-equal"));
                    }
                    Some(c) => {
                        return Err(self.error(format!(
                            "expected ',' or ')' after an argument of {name}, found {}",
                            describe(c)
                        )));
                    }
                }
            }
        }
        self.depth -= 1;
        Ok(Expr::Call {
            name,
            args,
            span: self.span_from(start),
        })
    }
}
