//! Property tests: the parser never panics, and printed trees re-parse to themselves.

use proptest::prelude::*;
use scimsync_expr::{CompareOp, Context, Expr, Span, eval, parse, trace};

fn leaf() -> impl Strategy<Value = Expr> {
    let sp = Span::default();
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_ .:-]{0,12}[A-Za-z0-9]"
            .prop_map(move |name| Expr::Attr { name, span: sp }),
        "[A-Za-z0-9]".prop_map(move |name| Expr::Attr { name, span: sp }),
        any::<String>().prop_map(move |value| Expr::Str { value, span: sp }),
        any::<i64>().prop_map(move |value| Expr::Int { value, span: sp }),
        "[A-Za-z_][A-Za-z0-9_]{0,10}".prop_map(move |value| Expr::Word { value, span: sp }),
        "-?[0-9]{1,5}\\.[0-9]{1,3}".prop_map(move |value| Expr::Word { value, span: sp }),
    ]
}

fn tree() -> impl Strategy<Value = Expr> {
    let sp = Span::default();
    leaf().prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            (
                "[A-Za-z_][A-Za-z0-9_]{0,12}",
                prop::collection::vec(prop::option::weighted(0.8, inner.clone()), 0..6)
            )
                .prop_filter(
                    "a lone empty argument prints as no argument",
                    |(_, args)| { !(args.len() == 1 && args[0].is_none()) }
                )
                .prop_map(move |(name, args)| Expr::Call {
                    name,
                    args,
                    span: sp
                }),
            (
                prop_oneof![
                    Just(CompareOp::Eq),
                    Just(CompareOp::Ne),
                    Just(CompareOp::Gt),
                    Just(CompareOp::Ge),
                    Just(CompareOp::Lt),
                    Just(CompareOp::Le)
                ],
                inner.clone(),
                inner
            )
                .prop_filter("comparisons do not chain", |(_, l, r)| {
                    !matches!(l, Expr::Compare { .. }) && !matches!(r, Expr::Compare { .. })
                })
                .prop_map(move |(op, l, r)| Expr::Compare {
                    op,
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                    span: sp
                }),
        ]
    })
}

/// 512 cases per property unless `PROPTEST_CASES` says otherwise (a long soak in CI, a quick
/// run while editing); the rest of proptest's configuration keeps its defaults, which read the
/// other `PROPTEST_*` variables.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases_from(std::env::var("PROPTEST_CASES").ok().as_deref()),
        ..ProptestConfig::default()
    }
}

fn cases_from(var: Option<&str>) -> u32 {
    var.and_then(|v| v.trim().parse().ok()).unwrap_or(512)
}

#[test]
fn proptest_cases_default_to_512_and_follow_the_environment() {
    assert_eq!(cases_from(None), 512);
    assert_eq!(cases_from(Some("100000")), 100_000);
    assert_eq!(cases_from(Some(" 7 ")), 7);
    assert_eq!(cases_from(Some("lots")), 512);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parser_never_panics(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn parser_never_panics_on_expression_like_text(text in r#"[A-Za-z\[\]"(),=<>&H0-9 \\.\n-]{0,80}"#) {
        if let Ok(e) = parse(&text) {
            let again = parse(&e.to_string()).expect("canonical text parses");
            prop_assert!(e.eq_ignore_spans(&again));
        }
    }

    #[test]
    fn print_then_parse_is_stable(e in tree()) {
        let printed = e.to_string();
        let parsed = parse(&printed).map_err(|err| TestCaseError::fail(format!("{printed}: {err}")))?;
        prop_assert!(e.eq_ignore_spans(&parsed), "{} reparsed as {}", printed, parsed);
        prop_assert_eq!(parsed.to_string(), printed);
    }

    #[test]
    fn evaluation_never_panics(e in tree()) {
        let attrs = Default::default();
        let ctx = Context { attrs: &attrs, now: chrono::DateTime::UNIX_EPOCH, seed: 7, default_domain: None };
        let _ = eval(&e, &ctx);
        let _ = trace(&e, &ctx);
    }
}
