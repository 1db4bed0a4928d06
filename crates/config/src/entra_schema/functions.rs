//! The parameter keys of Entra's functions (the names of Microsoft's function reference), for
//! the parameter tree of a Function source [inference], and string literals of the expression
//! language.

/// (function, fixed parameter names, names repeated after them).
const PARAMETERS: &[(&str, &[&str], &[&str])] = &[
    ("Append", &["source", "suffix"], &[]),
    ("AppRoleAssignmentsComplex", &["source"], &[]),
    ("AssertiveAppRoleAssignmentsComplex", &["source"], &[]),
    ("BitAnd", &["value1", "value2"], &[]),
    ("CBool", &["expression"], &[]),
    ("CDate", &["expression"], &[]),
    ("Coalesce", &[], &["source"]),
    ("ConvertToBase64", &["source"], &[]),
    ("ConvertToUTF8Hex", &["source"], &[]),
    ("Count", &["attribute"], &[]),
    ("CStr", &["value"], &[]),
    ("DateAdd", &["interval", "value", "dateTime"], &[]),
    ("DateDiff", &["interval", "date1", "date2"], &[]),
    ("DateFromNum", &["value"], &[]),
    (
        "FormatDateTime",
        &["source", "dateTimeStyles", "inputFormat", "outputFormat"],
        &[],
    ),
    ("IgnoreFlowIfNullOrEmpty", &["expression"], &[]),
    ("IIF", &["condition", "valueIfTrue", "valueIfFalse"], &[]),
    ("InStr", &["value1", "value2", "start", "compareType"], &[]),
    ("IsNull", &["expression"], &[]),
    ("IsNullOrEmpty", &["expression"], &[]),
    ("IsPresent", &["expression"], &[]),
    ("IsString", &["expression"], &[]),
    ("Item", &["attribute", "index"], &[]),
    ("Join", &["separator"], &["source"]),
    ("Left", &["String", "NumChars"], &[]),
    ("Len", &["value"], &[]),
    ("Mid", &["source", "start", "length"], &[]),
    ("NormalizeDiacritics", &["source"], &[]),
    ("Not", &["source"], &[]),
    ("NumFromDate", &["value"], &[]),
    ("PCase", &["source", "wordSeparators"], &[]),
    (
        "RandomString",
        &[
            "Length",
            "MinimumNumbers",
            "MinimumSpecialCharacters",
            "MinimumCapital",
            "MinimumLowerCase",
            "CharactersToAvoid",
        ],
        &[],
    ),
    ("Redact", &["attribute"], &[]),
    ("RemoveDuplicates", &["attribute"], &[]),
    (
        "Replace",
        &[
            "source",
            "oldValue",
            "regexPattern",
            "regexGroupName",
            "replacementValue",
            "replacementAttributeName",
            "template",
        ],
        &[],
    ),
    ("SelectUniqueValue", &[], &["uniqueValueRule"]),
    ("SingleAppRoleAssignment", &["source"], &[]),
    ("Split", &["source", "delimiter"], &[]),
    ("StripSpaces", &["source"], &[]),
    ("Switch", &["source", "defaultValue"], &["key", "value"]),
    ("ToLower", &["source", "culture"], &[]),
    ("ToUpper", &["source", "culture"], &[]),
    ("Word", &["String", "WordNumber", "Delimiters"], &[]),
];

/// The key of argument `i` of `function`; `None` past a fixed list or for an unknown function.
pub(super) fn parameter_name(function: &str, i: usize) -> Option<&'static str> {
    let (_, fixed, repeat) = PARAMETERS.iter().find(|(f, _, _)| *f == function)?;
    match fixed.get(i) {
        Some(n) => Some(n),
        None if repeat.is_empty() => None,
        None => Some(repeat[(i - fixed.len()) % repeat.len()]),
    }
}

/// The first position at or after `from` whose key is `key`.
pub(super) fn parameter_position(function: &str, key: &str, from: usize) -> Option<usize> {
    let (_, fixed, repeat) = PARAMETERS.iter().find(|(f, _, _)| *f == function)?;
    let limit = from.max(fixed.len()) + repeat.len() + 1;
    (from..limit)
        .find(|&i| parameter_name(function, i).is_some_and(|n| n.eq_ignore_ascii_case(key)))
}

/// A string literal of the expression language.
pub(super) fn quote(s: &str) -> String {
    scimsync_expr::Expr::Str {
        value: s.to_string(),
        span: Default::default(),
    }
    .to_string()
}
