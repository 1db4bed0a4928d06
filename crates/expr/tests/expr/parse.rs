//! Parsing: the syntax Entra admins paste, canonical printing, and exact error positions.

use scimsync_expr::{CompareOp, Expr, parse};

fn roundtrip(text: &str) -> Expr {
    let e = parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
    let printed = e.to_string();
    let again = parse(&printed).unwrap_or_else(|err| panic!("{printed}: {err}"));
    assert!(e.eq_ignore_spans(&again), "{text} → {printed}");
    e
}

fn error(text: &str) -> (u32, u32, String) {
    let e = parse(text).expect_err(text);
    (e.line, e.column, e.message)
}

#[test]
fn every_documented_expression_parses_and_reprints_stably() {
    for text in [
        r#"Append([userPrincipalName], ".test")"#,
        "AppRoleAssignmentsComplex([appRoleAssignments])",
        "BitAnd(&HF, &HF7)",
        "CBool([attribute1] = [attribute2])",
        r#"CDate("2021-06-30+08:00")"#,
        "Coalesce([mail],[userPrincipalName])",
        r#"ConvertToBase64("Hello world!")"#,
        r#"DateAdd("d", 7, CDate([StatusHireDate]))"#,
        r#"DateDiff("d", Now(), CDate([StatusHireDate]))"#,
        "Switch([Active], , \n  \"1\", IIF(DateDiff(\"d\", Now(), CDate([StatusHireDate])) > 5, \"False\", \"True\"), \n  \"0\", \"False\")",
        "DateFromNum(129699324000000000)",
        r#"Join("@", [mailNickname], DefaultDomain())"#,
        r#"FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")"#,
        "Guid()",
        r#"IgnoreFlowIfNullOrEmpty(Switch([prefix], "", "3443", "Dr.", "3444", "Prof.", "3445", "Prof. Dr."))"#,
        r#"IIF([country]="USA",IIF([state]="CA","True","False"),"False")"#,
        r#"InStr("repEated","e",3,vbBinaryCompare)"#,
        r#"Switch(IsPresent([directManager]),[directManager], IsPresent([skiplevelManager]),[skiplevelManager], IsPresent([director]),[director])"#,
        "Item([proxyAddresses], 1)",
        "IIF(Len([LastName]) <= 5,  \n\n  Left(Join (\"\",[LastName],[FirstName]),10),  \n  Join(\"\", Mid([LastName],1,9), Mid([FirstName],1,1)) \n\n)",
        "Len(42568.75)",
        r#"NumFromDate(Join("", FormatDateTime([ContractEndDate], ,"yyyy-MM-ddzzz", "yyyy-MM-dd"), " 23:59:59-08:00"))"#,
        r#"PCase([lastName]," '-")"#,
        r#"RandomString(10,2,2,2,1,"?,")"#,
        "Redact(RandomString(6,3,0,0,3))",
        r#"Replace([telephoneNumber], , "\\+(?<isdCode>\\d* )(?<phoneNumber>\\d{10})", "phoneNumber" , , [mobile], )"#,
        r#"Replace([mail], "@contoso.com", , ,"", ,)"#,
        "SelectUniqueValue( \n    Join(\"@\", NormalizeDiacritics(StripSpaces(Join(\".\",  [PreferredFirstName], [PreferredLastName]))), \"contoso.com\"), \n    Join(\"@\", NormalizeDiacritics(StripSpaces(Join(\".\",  Mid([PreferredFirstName], 1, 1), [PreferredLastName]))), \"contoso.com\")\n)",
        r#"Split([extensionAttribute5], ",")"#,
        r#"Switch(ToLower([statusFlag]), "0", "true", "1", "false", "0")"#,
        r#"Word("This,string!has&many separators",3,",!&#")"#,
        r#"Join("", 1000, Replace(ConvertToUTF8Hex([objectId]), , "[a-zA-Z_]*", , "", , ))"#,
        r#"Switch([IsSoftDeleted], , "False", "True", "True", "False")"#,
        "Not([IsSoftDeleted])",
        r#""Company name: \"Contoso\"""#,
        "[mail]",
    ] {
        roundtrip(text);
    }
}

#[test]
fn empty_optional_arguments_are_kept_in_place() {
    let e = roundtrip(r#"Replace([mail], "@contoso.com", , ,"", ,)"#);
    let Expr::Call { name, args, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(name, "Replace");
    let present: Vec<bool> = args.iter().map(Option::is_some).collect();
    assert_eq!(present, [true, true, false, false, true, false, false]);
    assert_eq!(
        e.to_string(),
        r#"Replace([mail], "@contoso.com", , , "", , )"#
    );
}

#[test]
fn literals_hex_negative_words_and_decimals() {
    let e = roundtrip(r#"F(&HF7, -10, vbTextCompare, 42568.75, "a\\b\"c")"#);
    let Expr::Call { args, .. } = e else { panic!() };
    let args: Vec<Expr> = args.into_iter().flatten().collect();
    assert!(matches!(args[0], Expr::Int { value: 247, .. }));
    assert!(matches!(args[1], Expr::Int { value: -10, .. }));
    assert!(matches!(&args[2], Expr::Word { value, .. } if value == "vbTextCompare"));
    assert!(matches!(&args[3], Expr::Word { value, .. } if value == "42568.75"));
    assert!(matches!(&args[4], Expr::Str { value, .. } if value == "a\\b\"c"));
}

#[test]
fn comparisons_in_arguments() {
    for (text, op) in [
        ("IIF([a]=\"x\",1,2)", CompareOp::Eq),
        ("IIF([a]<>\"x\",1,2)", CompareOp::Ne),
        ("IIF([a]>1,1,2)", CompareOp::Gt),
        ("IIF([a]>=1,1,2)", CompareOp::Ge),
        ("IIF([a]<1,1,2)", CompareOp::Lt),
        ("IIF([a]<=1,1,2)", CompareOp::Le),
    ] {
        let Expr::Call { args, .. } = roundtrip(text) else {
            panic!()
        };
        assert!(
            matches!(&args[0], Some(Expr::Compare { op: o, .. }) if *o == op),
            "{text}"
        );
    }
}

#[test]
fn spans_point_at_the_source_text() {
    let e = parse("Join(\" \",\n  [givenName], [surname])").unwrap();
    let Expr::Call { args, span, .. } = &e else {
        panic!()
    };
    assert_eq!((span.line, span.column, span.start), (1, 1, 0));
    let given = args[1].as_ref().unwrap().span();
    assert_eq!((given.line, given.column), (2, 3));
    assert_eq!(
        &"Join(\" \",\n  [givenName], [surname])"[given.start..given.end],
        "[givenName]"
    );
}

#[test]
fn errors_say_where_and_why() {
    let (l, c, m) = error("Join(\" \", [givenName]");
    assert_eq!((l, c), (1, 22));
    assert!(m.contains("missing ')'"), "{m}");

    let (l, c, m) = error("Join(\" \",\n  [givenName] [surname])");
    assert_eq!((l, c), (2, 15));
    assert!(m.contains("expected ',' or ')'"), "{m}");

    let (l, c, m) = error("Append([mail, \"x\")");
    assert_eq!((l, c), (1, 8));
    assert!(m.contains("unterminated attribute"), "{m}");

    let (l, c, m) = error("Append([mail], \"x)");
    assert_eq!((l, c), (1, 16));
    assert!(m.contains("unterminated string"), "{m}");

    let (_, _, m) = error("IIF([a] = 1 = 2, 1, 2)");
    assert!(m.contains("cannot be chained"), "{m}");
    let (_, _, m) = error("IIF([a] != 1, 1, 2)");
    assert!(m.contains("<>"), "{m}");
    let (l, c, m) = error("Foo() bar");
    assert_eq!((l, c), (1, 7));
    assert!(m.contains("after the end"), "{m}");
    assert_eq!(error("   ").2, "empty expression");
    assert!(error("F(&Hxyz)").2.contains("hexadecimal"));
    assert!(error("F(99999999999999999999)").2.contains("out of range"));
    assert!(error("F('x')").2.contains("double quotes"));
    assert!(error("F([])").2.contains("empty attribute"));
}

#[test]
fn error_display_is_line_colon_column() {
    let e = parse("Join(\" \",\n  [a] [b])").unwrap_err();
    assert_eq!(e.to_string(), format!("2:7: {}", e.message));
}

#[test]
fn the_10000_character_limit() {
    let ok = format!("F(\"{}\")", "y".repeat(10_000 - 5));
    assert_eq!(ok.chars().count(), 10_000);
    assert!(parse(&ok).is_ok());
    let long = format!("F(\"{}\")", "y".repeat(10_000 - 4));
    let e = parse(&long).unwrap_err();
    assert_eq!((e.line, e.column), (1, 10_001));
    assert!(e.message.contains("longer than 10000"), "{}", e.message);
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = format!("{}[a]{}", "F(".repeat(150), ")".repeat(150));
    assert!(parse(&text).unwrap_err().message.contains("nested"));
}
