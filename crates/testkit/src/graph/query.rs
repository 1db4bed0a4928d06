//! OData query options as Graph v1.0 takes them: `$select`, `$top`, `$filter`, `$count`,
//! `$skiptoken`, plus the opaque page tokens and nextLink construction.
//!
//! The `$filter` subset is what works on users and groups without advanced-query headers:
//! `prop eq 'v'`, `prop eq true|false`, `prop in ('a','b')`, `startswith(prop,'v')`, joined with
//! `and`/`or` and parentheses. Anything else (`ne`, `endswith`, `not`, `gt`, `eq null`, lambdas)
//! is answered 400 `Request_UnsupportedQuery`, as Graph does without `ConsistencyLevel`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Query options of one request, keyed by lower-cased option name, values percent-decoded.
#[derive(Debug, Default)]
pub(crate) struct QueryOptions {
    pairs: Vec<(String, String)>,
    /// The raw `k=v` parts, kept to repeat them verbatim in nextLinks.
    raw_parts: Vec<String>,
}

impl QueryOptions {
    /// Splits a raw query string; `Err` names a system query option given twice.
    pub fn parse(raw: Option<&str>) -> Result<QueryOptions, String> {
        let mut q = QueryOptions::default();
        let Some(raw) = raw else { return Ok(q) };
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let key = decode(k).to_ascii_lowercase();
            if key.starts_with('$') && q.pairs.iter().any(|(k2, _)| *k2 == key) {
                return Err(format!(
                    "Query option '{key}' was specified more than once, but it must be specified at most once."
                ));
            }
            q.pairs.push((key, decode(v)));
            q.raw_parts.push(part.to_string());
        }
        Ok(q)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first `$`-option that is not in `allowed`, if any.
    pub fn unsupported(&self, allowed: &[&str]) -> Option<&str> {
        self.pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| k.starts_with('$') && !allowed.contains(k))
    }

    /// `$top` in 1..=999, default 100; `Err` carries Graph's message.
    pub fn top(&self) -> Result<usize, String> {
        match self.get("$top") {
            None => Ok(100),
            Some(t) => match t.trim().parse::<i64>() {
                Ok(n) if (1..=999).contains(&n) => Ok(n as usize),
                _ => Err(format!(
                    "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                )),
            },
        }
    }

    /// The original query string with `$skiptoken` (and any `drop`ped option) removed.
    pub fn raw_without(&self, drop: &[&str]) -> Vec<String> {
        self.raw_parts
            .iter()
            .filter(|p| {
                let k = p.split_once('=').map_or(p.as_str(), |(k, _)| k);
                let k = decode(k).to_ascii_lowercase();
                k != "$skiptoken" && !drop.contains(&k.as_str())
            })
            .cloned()
            .collect()
    }
}

fn decode(s: &str) -> String {
    // Query strings may use '+' for spaces (form encoding); Graph clients send both.
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Builds an absolute nextLink: the original options, then `$skiptoken`.
pub(crate) fn next_link(base_path: &str, opts: &QueryOptions, token: &str) -> String {
    let mut parts = opts.raw_without(&[]);
    parts.push(format!("$skiptoken={token}"));
    format!("{base_path}?{}", parts.join("&"))
}

// ---- opaque tokens ----------------------------------------------------------------------------

/// Prefix that makes tokens look like Graph's (`RFNwdAIAAQAAAD8...`) and marks ours.
const TOKEN_PREFIX: &str = "RFNwdA";

/// Encodes a serialisable token payload into an opaque URL-safe string.
pub(crate) fn encode_token<T: Serialize>(payload: &T) -> String {
    let json = serde_json::to_vec(payload).unwrap_or_default();
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
}

/// Decodes [`encode_token`]; `None` if the token is not one of ours.
pub(crate) fn decode_token<T: for<'de> Deserialize<'de>>(token: &str) -> Option<T> {
    let body = token.strip_prefix(TOKEN_PREFIX)?;
    let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The page token of a plain list: where the previous page stopped.
#[derive(Serialize, Deserialize)]
pub(crate) struct PageToken {
    /// Which collection the token belongs to (a token from another list is rejected).
    pub c: String,
    /// Last key served.
    pub k: String,
    /// Page-token epoch; bumping it expires all outstanding tokens.
    pub e: u64,
}

// ---- $filter ----------------------------------------------------------------------------------

/// A parsed `$filter`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Filter {
    Eq(String, Value),
    In(String, Vec<Value>),
    StartsWith(String, String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            _ => {
                let start = i;
                while i < chars.len() && !" \t(),'".contains(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok) -> Result<(), String> {
        match self.next() {
            Some(got) if got == t => Ok(()),
            other => Err(format!("expected {t:?}, found {other:?}")),
        }
    }
    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.term()?;
        while self.peek_kw("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }
    fn literal(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Value::String(s)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            other => Err(format!("unsupported literal {other:?}")),
        }
    }
    fn term(&mut self) -> Result<Filter, String> {
        match self.next() {
            Some(Tok::LParen) => {
                let f = self.or()?;
                self.expect(Tok::RParen)?;
                Ok(f)
            }
            Some(Tok::Ident(f)) if f.eq_ignore_ascii_case("startswith") => {
                self.expect(Tok::LParen)?;
                let Some(Tok::Ident(prop)) = self.next() else {
                    return Err("startswith needs a property".into());
                };
                self.expect(Tok::Comma)?;
                let Some(Tok::Str(v)) = self.next() else {
                    return Err("startswith needs a string".into());
                };
                self.expect(Tok::RParen)?;
                Ok(Filter::StartsWith(prop, v))
            }
            Some(Tok::Ident(prop)) => match self.next() {
                Some(Tok::Ident(op)) if op.eq_ignore_ascii_case("eq") => {
                    Ok(Filter::Eq(prop, self.literal()?))
                }
                Some(Tok::Ident(op)) if op.eq_ignore_ascii_case("in") => {
                    self.expect(Tok::LParen)?;
                    let mut vals = vec![self.literal()?];
                    while self.toks.get(self.pos) == Some(&Tok::Comma) {
                        self.pos += 1;
                        vals.push(self.literal()?);
                    }
                    self.expect(Tok::RParen)?;
                    Ok(Filter::In(prop, vals))
                }
                other => Err(format!("unsupported operator {other:?}")),
            },
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

impl Filter {
    /// Parses a `$filter` expression; `Err` means "unsupported query".
    pub fn parse(s: &str) -> Result<Filter, String> {
        let mut p = Parser {
            toks: tokenize(s)?,
            pos: 0,
        };
        let f = p.or()?;
        if p.pos != p.toks.len() {
            return Err("trailing tokens".into());
        }
        Ok(f)
    }

    /// Canonicalises and checks every property with `canon` (`None` = not filterable).
    pub fn resolve(self, canon: &impl Fn(&str) -> Option<String>) -> Result<Filter, String> {
        let c = |p: String| canon(&p).ok_or(p);
        Ok(match self {
            Filter::Eq(p, v) => Filter::Eq(c(p)?, v),
            Filter::In(p, v) => Filter::In(c(p)?, v),
            Filter::StartsWith(p, v) => Filter::StartsWith(c(p)?, v),
            Filter::And(a, b) => {
                Filter::And(Box::new(a.resolve(canon)?), Box::new(b.resolve(canon)?))
            }
            Filter::Or(a, b) => {
                Filter::Or(Box::new(a.resolve(canon)?), Box::new(b.resolve(canon)?))
            }
        })
    }

    /// Evaluates against an object's property lookup. String comparison ignores case, as
    /// directory filters do.
    pub fn matches(&self, get: &impl Fn(&str) -> Option<Value>) -> bool {
        fn eq(a: &Value, b: &Value) -> bool {
            match (a, b) {
                (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
                _ => a == b,
            }
        }
        match self {
            Filter::Eq(p, v) => get(p).is_some_and(|x| eq(&x, v)),
            Filter::In(p, vs) => get(p).is_some_and(|x| vs.iter().any(|v| eq(&x, v))),
            Filter::StartsWith(p, v) => get(p).is_some_and(|x| {
                x.as_str()
                    .is_some_and(|s| s.to_lowercase().starts_with(&v.to_lowercase()))
            }),
            Filter::And(a, b) => a.matches(get) && b.matches(get),
            Filter::Or(a, b) => a.matches(get) || b.matches(get),
        }
    }

    /// If the filter is only `id eq` terms joined by `or` (the delta form), their ids.
    pub fn id_list(&self) -> Option<Vec<String>> {
        match self {
            Filter::Eq(p, Value::String(v)) if p == "id" => Some(vec![v.clone()]),
            Filter::Or(a, b) => {
                let mut l = a.id_list()?;
                l.extend(b.id_list()?);
                Some(l)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_supported_filters() {
        let f = Filter::parse("userPrincipalName eq 'o''brien@x.com'").unwrap();
        assert_eq!(
            f,
            Filter::Eq("userPrincipalName".into(), json!("o'brien@x.com"))
        );
        let f = Filter::parse("startswith(displayName,'Ad') and accountEnabled eq false").unwrap();
        let get = |p: &str| match p {
            "displayName" => Some(json!("adele")),
            "accountEnabled" => Some(json!(false)),
            _ => None,
        };
        assert!(f.matches(&get));
        assert!(Filter::parse("id in ('a','b')").is_ok());
        assert!(Filter::parse("id ne 'a'").is_err());
        assert!(Filter::parse("endswith(mail,'x')").is_err());
        assert!(Filter::parse("mail eq null").is_err());
        assert_eq!(
            Filter::parse("id eq 'a' or id eq 'b'").unwrap().id_list(),
            Some(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn next_link_repeats_options_and_replaces_skiptoken() {
        let q = QueryOptions::parse(Some("$select=id&$top=2&$skiptoken=old")).unwrap();
        assert_eq!(
            next_link("http://h/v1.0/users", &q, "NEW"),
            "http://h/v1.0/users?$select=id&$top=2&$skiptoken=NEW"
        );
        assert!(QueryOptions::parse(Some("$top=1&$top=2")).is_err());
        assert!(q.top().is_ok());
        let bad = QueryOptions::parse(Some("$top=1000")).unwrap();
        assert!(bad.top().is_err());
    }
}
