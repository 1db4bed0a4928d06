//! Scoping-filter operators, spelled exactly as Entra's portal and Graph spell them.

use std::fmt;

/// A scoping clause operator (reference §3.3). The file uses Entra's exact spellings
/// (`EQUALS`, `Greater_Than_OR_EQUALS`, `REGEX MATCH`, …); see [`Operator::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `&`: the attribute is one of the comma-separated values.
    In,
    /// `!&`: the attribute is none of the comma-separated values.
    NotIn,
    EndsWith,
    Equals,
    NotEquals,
    GreaterThan,
    GreaterThanOrEquals,
    /// Case-sensitive substring.
    Includes,
    IsTrue,
    IsFalse,
    IsNull,
    IsNotNull,
    RegexMatch,
    NotRegexMatch,
}

impl Operator {
    pub const ALL: [Operator; 14] = [
        Operator::In,
        Operator::NotIn,
        Operator::EndsWith,
        Operator::Equals,
        Operator::NotEquals,
        Operator::GreaterThan,
        Operator::GreaterThanOrEquals,
        Operator::Includes,
        Operator::IsTrue,
        Operator::IsFalse,
        Operator::IsNull,
        Operator::IsNotNull,
        Operator::RegexMatch,
        Operator::NotRegexMatch,
    ];

    /// Entra's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "&",
            Operator::NotIn => "!&",
            Operator::EndsWith => "ENDS_WITH",
            Operator::Equals => "EQUALS",
            Operator::NotEquals => "NOT EQUALS",
            Operator::GreaterThan => "Greater_Than",
            Operator::GreaterThanOrEquals => "Greater_Than_OR_EQUALS",
            Operator::Includes => "Includes",
            Operator::IsTrue => "IS TRUE",
            Operator::IsFalse => "IS FALSE",
            Operator::IsNull => "IS NULL",
            Operator::IsNotNull => "IS NOT NULL",
            Operator::RegexMatch => "REGEX MATCH",
            Operator::NotRegexMatch => "NOT REGEX MATCH",
        }
    }

    /// Whether the operator takes no value.
    pub fn is_unary(self) -> bool {
        matches!(
            self,
            Operator::IsTrue | Operator::IsFalse | Operator::IsNull | Operator::IsNotNull
        )
    }

    /// Parse Entra's exact spelling. Anything else is refused, with a suggestion when it is
    /// a near miss (other case, `_` for a space, a small typo): Entra's own spellings are
    /// irregular, and guessing would hide which one was meant.
    pub fn parse(s: &str) -> Result<Operator, String> {
        if let Some(op) = Operator::ALL.into_iter().find(|op| op.as_str() == s) {
            return Ok(op);
        }
        let norm = |t: &str| t.trim().to_ascii_uppercase().replace(['_', '-'], " ");
        let given = norm(s);
        let best = Operator::ALL
            .into_iter()
            .map(|op| (strsim::levenshtein(&given, &norm(op.as_str())), op))
            .min_by_key(|(d, _)| *d);
        match best {
            Some((d, op)) if d <= 2 && given.len() > 2 => Err(format!(
                "unknown operator {s:?} (did you mean {:?}?)",
                op.as_str()
            )),
            _ => {
                let all: Vec<String> = Operator::ALL
                    .iter()
                    .map(|op| format!("{:?}", op.as_str()))
                    .collect();
                Err(format!(
                    "unknown operator {s:?}; expected one of: {}",
                    all.join(", ")
                ))
            }
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_spellings_round_trip() {
        for op in Operator::ALL {
            assert_eq!(Operator::parse(op.as_str()), Ok(op));
            assert_eq!(op.to_string(), op.as_str());
        }
        let unary: Vec<_> = Operator::ALL.into_iter().filter(|o| o.is_unary()).collect();
        assert_eq!(
            unary,
            [
                Operator::IsTrue,
                Operator::IsFalse,
                Operator::IsNull,
                Operator::IsNotNull
            ]
        );
    }

    #[test]
    fn near_misses_get_a_suggestion() {
        for (typed, meant) in [
            ("equals", "EQUALS"),
            ("NOT_EQUALS", "NOT EQUALS"),
            ("GREATER_THAN", "Greater_Than"),
            ("Greater_Than_Or_Equals", "Greater_Than_OR_EQUALS"),
            ("ENDS WITH", "ENDS_WITH"),
            ("REGEX_MATCH", "REGEX MATCH"),
            ("IS NOT NUL", "IS NOT NULL"),
            ("includes", "Includes"),
        ] {
            let e = Operator::parse(typed).unwrap_err();
            assert!(
                e.contains(&format!("did you mean {meant:?}")),
                "{typed}: {e}"
            );
        }
        let e = Operator::parse("LESS_THAN").unwrap_err();
        assert!(e.contains("expected one of: \"&\", \"!&\""), "{e}");
        assert!(Operator::parse("==").is_err());
    }
}
