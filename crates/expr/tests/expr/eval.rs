//! Evaluation: every example of Entra's expression reference, plus the null-handling rules.

use chrono::{TimeZone, Utc};
use scimsync_expr::{Context, Outcome, Value, parse, trace};
use serde_json::json;

use super::{attrs, err, now, outcome, text, value};

fn t(expr: &str) -> String {
    text(expr, json!({})).unwrap_or_else(|| panic!("{expr}: null"))
}

// --- Documented examples, function by function -------------------------------------------

#[test]
fn append() {
    let src = json!({"userPrincipalName": "John.Doe@contoso.com"});
    assert_eq!(
        text(r#"Append([userPrincipalName], ".test")"#, src).unwrap(),
        "John.Doe@contoso.com.test"
    );
    assert_eq!(
        value(r#"Append([missing], [missing2])"#, json!({})),
        Value::Null
    );
    assert_eq!(t(r#"Append([missing], "x")"#), "x");
}

#[test]
fn bit_and() {
    assert_eq!(value("BitAnd(&HF, &HF7)", json!({})), Value::Int(7));
    assert_eq!(
        value(r#"BitAnd([uac], 2)"#, json!({"uac": 514})),
        Value::Int(2)
    );
}

#[test]
fn cbool() {
    assert_eq!(
        value("CBool([a] = [b])", json!({"a": "x", "b": "x"})),
        Value::Bool(true)
    );
    assert_eq!(
        value("CBool([a] = [b])", json!({"a": "x", "b": "y"})),
        Value::Bool(false)
    );
    assert_eq!(value("CBool(5)", json!({})), Value::Bool(true));
    assert_eq!(value("CBool(0)", json!({})), Value::Bool(false));
    assert_eq!(value(r#"CBool("True")"#, json!({})), Value::Bool(true));
    assert!(err(r#"CBool("maybe")"#, json!({})).contains("CBool"));
}

#[test]
fn cdate_returns_utc_in_entra_format() {
    assert_eq!(
        text(
            "CDate([StatusHireDate])",
            json!({"StatusHireDate": "2020-03-16-07:00"})
        )
        .unwrap(),
        "3/16/2020 7:00:00 AM"
    );
    assert_eq!(t(r#"CDate("2021-06-30+08:00")"#), "6/29/2021 4:00:00 PM");
    assert_eq!(
        t(r#"CDate("2009-06-15T01:45:30-07:00")"#),
        "6/15/2009 8:45:30 AM"
    );
    assert_eq!(t(r#"CDate("2021-08-24")"#), "8/24/2021 12:00:00 AM");
    assert_eq!(value("CDate([missing])", json!({})), Value::Null);
    assert!(
        err(r#"CDate("not a date")"#, json!({})).contains("cannot read \"not a date\" as a date")
    );
}

#[test]
fn coalesce_first_non_null_non_empty() {
    let src = json!({"mail": null, "userPrincipalName": "John.Doe@contoso.com"});
    assert_eq!(
        text("Coalesce([mail],[userPrincipalName])", src).unwrap(),
        "John.Doe@contoso.com"
    );
    let src = json!({"mail": "", "userPrincipalName": "upn@x"});
    assert_eq!(
        text("Coalesce([mail],[userPrincipalName])", src).unwrap(),
        "upn@x"
    );
    assert_eq!(t(r#"Coalesce([a], [b], "default")"#), "default");
    assert_eq!(t(r#"Coalesce([a], [b], "")"#), "");
    assert_eq!(value("Coalesce([a], [b])", json!({})), Value::Null);
}

#[test]
fn conversions() {
    assert_eq!(
        t(r#"ConvertToBase64("Hello world!")"#),
        "SABlAGwAbABvACAAdwBvAHIAbABkACEA"
    );
    assert_eq!(
        t(r#"ConvertToUTF8Hex("Hello world!")"#),
        "48656C6C6F20776F726C6421"
    );
    assert_eq!(
        text("CStr([dn])", json!({"dn": "cn=Joe,dc=contoso,dc=com"})).unwrap(),
        "cn=Joe,dc=contoso,dc=com"
    );
    assert_eq!(t("CStr(42)"), "42");
    assert_eq!(text("CStr([flag])", json!({"flag": true})).unwrap(), "True");
}

#[test]
fn count() {
    assert_eq!(
        value(
            "Count([proxyAddresses])",
            json!({"proxyAddresses": ["a", "b", "c"]})
        ),
        Value::Int(3)
    );
    assert_eq!(value("Count([proxyAddresses])", json!({})), Value::Int(0));
    assert_eq!(
        value("Count([mail])", json!({"mail": "a@b"})),
        Value::Int(1)
    );
}

#[test]
fn date_add_table() {
    let hire = json!({"StatusHireDate": "2012-03-16-07:00"});
    for (interval, n, expected) in [
        ("d", 7, "3/23/2012 7:00:00 AM"),
        ("d", -10, "3/6/2012 7:00:00 AM"),
        ("ww", 2, "3/30/2012 7:00:00 AM"),
        ("m", 10, "1/16/2013 7:00:00 AM"),
        ("yyyy", 2, "3/16/2014 7:00:00 AM"),
        ("h", 5, "3/16/2012 12:00:00 PM"),
        ("n", -1, "3/16/2012 6:59:00 AM"),
        ("s", 30, "3/16/2012 7:00:30 AM"),
    ] {
        let expr = format!(r#"DateAdd("{interval}", {n}, CDate([StatusHireDate]))"#);
        assert_eq!(text(&expr, hire.clone()).unwrap(), expected, "{expr}");
    }
    // Month arithmetic clamps to the end of the month, like .NET AddMonths.
    assert_eq!(
        t(r#"DateAdd("m", 1, CDate("2021-01-31"))"#),
        "2/28/2021 12:00:00 AM"
    );
    assert!(err(r#"DateAdd("x", 1, Now())"#, json!({})).contains("unknown interval"));
}

#[test]
fn date_diff_table() {
    for (interval, d1, d2, expected) in [
        ("d", "2021-08-18+08:00", "2021-08-31+08:00", 13),
        ("d", "8/25/2021 5:41:18 PM", "2012-03-16-07:00", -3449),
        ("ww", "8/25/2021 5:41:18 PM", "2012-03-16-07:00", -493),
        ("m", "8/25/2021 5:41:18 PM", "2012-03-16-07:00", -113),
        ("yyyy", "8/25/2021 5:41:18 PM", "2012-03-16-07:00", -9),
        ("d", "2021-08-31+08:00", "2021-08-31+08:00", 0),
        ("h", "2021-08-24", "2021-08-25", 24),
        ("n", "2021-08-24", "2021-08-25", 1440),
        ("s", "2021-08-24", "2021-08-25", 86400),
    ] {
        let expr = format!(r#"DateDiff("{interval}", CDate("{d1}"), CDate("{d2}"))"#);
        assert_eq!(value(&expr, json!({})), Value::Int(expected), "{expr}");
    }
}

#[test]
fn date_diff_with_iif_to_set_account_enabled() {
    let expr = "Switch([Active], , \n  \"1\", IIF(DateDiff(\"d\", Now(), CDate([StatusHireDate])) > 5, \"False\", \"True\"), \n  \"0\", \"False\")";
    // now() is 2021-07-02 15:33:38 UTC.
    assert_eq!(
        text(expr, json!({"Active": "1", "StatusHireDate": "2021-07-05"})).unwrap(),
        "True"
    );
    assert_eq!(
        text(expr, json!({"Active": "1", "StatusHireDate": "2021-07-30"})).unwrap(),
        "False"
    );
    assert_eq!(
        text(expr, json!({"Active": "0", "StatusHireDate": "2021-07-05"})).unwrap(),
        "False"
    );
}

#[test]
fn date_from_num_and_num_from_date() {
    let d = value("DateFromNum(129699324000000000)", json!({}));
    assert_eq!(
        d,
        Value::Date(Utc.with_ymd_and_hms(2012, 1, 1, 23, 0, 0).unwrap())
    );
    assert_eq!(d.to_text().unwrap(), "1/1/2012 11:00:00 PM");
    assert_eq!(
        value(
            "DateFromNum([lastLogonTimestamp])",
            json!({"lastLogonTimestamp": "129699324000000000"})
        ),
        d
    );
    assert_eq!(
        value(r#"NumFromDate("2012-01-01T23:00:00Z")"#, json!({})),
        Value::Int(129699324000000000)
    );

    // Workday: ContractEndDate 2020-12-31-08:00 → accountExpires at 23:59:59-08:00 that day.
    let workday = r#"NumFromDate(Join("", FormatDateTime([ContractEndDate], ,"yyyy-MM-ddzzz", "yyyy-MM-dd"), " 23:59:59-08:00"))"#;
    assert_eq!(
        value(workday, json!({"ContractEndDate": "2020-12-31-08:00"})),
        Value::Int(132539615990000000)
    );
    // SuccessFactors: endDate in M/d/yyyy hh:mm:ss tt.
    let sf = r#"NumFromDate(Join("",FormatDateTime([endDate], ,"M/d/yyyy hh:mm:ss tt","yyyy-MM-dd")," 23:59:59-08:00"))"#;
    assert_eq!(
        value(sf, json!({"endDate": "12/31/2020 12:00:00 AM"})),
        Value::Int(132539615990000000)
    );
}

#[test]
fn default_domain() {
    assert_eq!(
        text(
            r#"Join("@", [mailNickname], DefaultDomain())"#,
            json!({"mailNickname": "jdoe"})
        )
        .unwrap(),
        "jdoe@contoso.com"
    );
    let attrs = attrs(json!({}));
    let ctx = Context {
        attrs: &attrs,
        now: now(),
        seed: 1,
        default_domain: None,
    };
    let e = scimsync_expr::eval(&parse("DefaultDomain()").unwrap(), &ctx).unwrap_err();
    assert!(e.message.contains("no default verified domain"), "{e}");
}

#[test]
fn format_date_time() {
    let src = json!({"extensionAttribute1": "20150123105347.1Z"});
    assert_eq!(
        text(
            r#"FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")"#,
            src
        )
        .unwrap(),
        "2015-01-23"
    );
    let d = r#""2009-06-15T13:45:30.6175425Z""#;
    for (fmt, expected) in [
        ("yyyy yy MM M dd d", "2009 09 06 6 15 15"),
        ("HH H hh h mm m ss s", "13 13 01 1 45 45 30 30"),
        (
            "f ff fff ffff fffff ffffff fffffff",
            "6 61 617 6175 61754 617542 6175425",
        ),
        ("tt zzz K", "PM +00:00 Z"),
        ("'Date:' yyyy-MM-dd\\Thh", "Date: 2009-06-15T01"),
        ("MMM MMMM ddd dddd", "Jun June Mon Monday"),
        ("o", "2009-06-15T13:45:30.6175425Z"),
        ("s", "2009-06-15T13:45:30"),
    ] {
        let expr = format!(r#"FormatDateTime({d}, , , "{fmt}")"#);
        assert_eq!(t(&expr), expected, "{fmt}");
    }
    assert_eq!(
        t(
            r#"FormatDateTime("2021-06-30T10:00:00.000Z", , "yyyy-MM-ddTHH:mm:ss.fffK", "M/d/yyyy h:mm tt")"#
        ),
        "6/30/2021 10:00 AM"
    );
    assert_eq!(
        t(r#"FormatDateTime("  03/16/2020  ", , "MM/dd/yyyy", "yyyyMMdd")"#),
        "20200316"
    );
    assert_eq!(
        value(r#"FormatDateTime([missing], , "yyyy", "yyyy")"#, json!({})),
        Value::Null
    );
    assert!(
        err(
            r#"FormatDateTime("2020-13-01", , "yyyy-MM-dd", "yyyy")"#,
            json!({})
        )
        .contains("does not match")
    );
}

#[test]
fn guid_is_deterministic_per_seed_and_position() {
    let a = t("Guid()");
    assert_eq!(a, t("Guid()"));
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "4");
    let two = value(r#"Join(",", Guid(), Guid())"#, json!({}))
        .to_text()
        .unwrap();
    let (x, y) = two.split_once(',').unwrap();
    assert_ne!(x, y);
}

#[test]
fn ignore_flow_if_null_or_empty() {
    assert_eq!(
        outcome("IgnoreFlowIfNullOrEmpty([department])", json!({})).unwrap(),
        Outcome::Ignore
    );
    assert_eq!(
        outcome(
            "IgnoreFlowIfNullOrEmpty([department])",
            json!({"department": ""})
        )
        .unwrap(),
        Outcome::Ignore
    );
    assert_eq!(
        outcome(
            "IgnoreFlowIfNullOrEmpty([department])",
            json!({"department": "Sales"})
        )
        .unwrap(),
        Outcome::Value(Value::Str("Sales".into()))
    );
    let expr = r#"IgnoreFlowIfNullOrEmpty(Switch([prefix], "", "3443", "Dr.", "3444", "Prof.", "3445", "Prof. Dr."))"#;
    assert_eq!(
        outcome(expr, json!({"prefix": "9999"})).unwrap(),
        Outcome::Ignore
    );
    assert_eq!(text(expr, json!({"prefix": "3445"})).unwrap(), "Prof. Dr.");
    let wrapped = r#"IgnoreFlowIfNullOrEmpty(IIF([country]="USA",[region],""))"#;
    assert_eq!(
        outcome(wrapped, json!({"country": "FR", "region": "x"})).unwrap(),
        Outcome::Ignore
    );
    assert_eq!(
        text(wrapped, json!({"country": "USA", "region": "West"})).unwrap(),
        "West"
    );
}

#[test]
fn iif_and_its_documented_limitations() {
    let expr = r#"IIF([country]="USA",[country],[department])"#;
    assert_eq!(
        text(expr, json!({"country": "USA", "department": "Sales"})).unwrap(),
        "USA"
    );
    assert_eq!(
        text(expr, json!({"country": "FR", "department": "Sales"})).unwrap(),
        "Sales"
    );
    let and = r#"IIF([country]="USA",IIF([state]="CA","True","False"),"False")"#;
    assert_eq!(
        text(and, json!({"country": "USA", "state": "CA"})).unwrap(),
        "True"
    );
    assert_eq!(
        text(and, json!({"country": "USA", "state": "WA"})).unwrap(),
        "False"
    );
    let or = r#"IIF([country]="USA","True",IIF([state]="CA","True","False"))"#;
    assert_eq!(
        text(or, json!({"country": "FR", "state": "CA"})).unwrap(),
        "True"
    );
    // The condition fails on null/empty sources, even through IsNullOrEmpty/IsPresent.
    for failing in [
        r#"IIF([country]="","Other",[country])"#,
        r#"IIF(IsNullOrEmpty([country]),"Other",[country])"#,
        r#"IIF(IsPresent([country]),[country],"Other")"#,
    ] {
        let e = err(failing, json!({"country": ""}));
        assert!(e.starts_with("1:5: IIF condition reads [country]"), "{e}");
        assert!(err(failing, json!({})).contains("Switch"));
    }
    // The documented workaround.
    let workaround = r#"Switch([country],[country],"","Other")"#;
    assert_eq!(text(workaround, json!({})).unwrap(), "Other");
    assert_eq!(text(workaround, json!({"country": ""})).unwrap(), "Other");
    assert_eq!(text(workaround, json!({"country": "FR"})).unwrap(), "FR");
    // Numeric comparison in the condition.
    assert_eq!(t("IIF(10 > 9, \"yes\", \"no\")"), "yes");
    assert_eq!(t("IIF(\"10\" > \"9\", \"yes\", \"no\")"), "yes");
}

#[test]
fn in_str() {
    assert_eq!(
        value(r#"InStr("The quick brown fox","quick")"#, json!({})),
        Value::Int(5)
    );
    assert_eq!(
        value(r#"InStr("repEated","e",3,vbBinaryCompare)"#, json!({})),
        Value::Int(7)
    );
    assert_eq!(
        value(r#"InStr("repEated","e",3,vbTextCompare)"#, json!({})),
        Value::Int(4)
    );
    assert_eq!(value(r#"InStr("abc","z")"#, json!({})), Value::Int(0));
    assert_eq!(value(r#"InStr([missing],"z")"#, json!({})), Value::Int(0));
}

#[test]
fn is_null_family() {
    let src = json!({"displayName": "", "mail": "a@b"});
    assert_eq!(
        value("IsNull([displayName])", src.clone()),
        Value::Bool(false)
    );
    assert_eq!(value("IsNull([other])", src.clone()), Value::Bool(true));
    assert_eq!(
        value("IsNullOrEmpty([displayName])", src.clone()),
        Value::Bool(true)
    );
    assert_eq!(
        value("IsNullOrEmpty([other])", src.clone()),
        Value::Bool(true)
    );
    assert_eq!(
        value("IsNullOrEmpty([mail])", src.clone()),
        Value::Bool(false)
    );
    assert_eq!(value("IsPresent([mail])", src.clone()), Value::Bool(true));
    assert_eq!(
        value("IsPresent([displayName])", src.clone()),
        Value::Bool(false)
    );
    assert_eq!(value("IsString([mail])", src.clone()), Value::Bool(true));
    assert_eq!(value("IsString([other])", src), Value::Bool(false));
    assert_eq!(
        text("IsPresent([mail])", json!({"mail": "x"})).unwrap(),
        "True"
    );
}

#[test]
fn item() {
    let src = json!({"proxyAddresses": ["SMTP:a@x", "smtp:b@x"]});
    assert_eq!(
        text("Item([proxyAddresses], 1)", src.clone()).unwrap(),
        "SMTP:a@x"
    );
    assert_eq!(
        text("Item([proxyAddresses], 2)", src.clone()).unwrap(),
        "smtp:b@x"
    );
    assert_eq!(value("Item([proxyAddresses], 3)", src.clone()), Value::Null);
    assert!(err("Item([proxyAddresses], 0)", src).contains("1:1: Item: index 0 is invalid"));
}

#[test]
fn join() {
    let src = json!({"givenName": "John", "surname": "Doe"});
    assert_eq!(
        text(r#"Join(", ", "", [surname], [givenName])"#, src.clone()).unwrap(),
        "Doe, John"
    );
    assert_eq!(
        text(r#"Join(" ", [givenName], [surname])"#, src).unwrap(),
        "John Doe"
    );
    // Null and empty sources are skipped; multi-valued sources expand.
    assert_eq!(
        text(
            r#"Join(" ", [givenName], [surname])"#,
            json!({"surname": "Doe"})
        )
        .unwrap(),
        "Doe"
    );
    assert_eq!(
        text(
            r#"Join(";", [a], [b])"#,
            json!({"a": ["x", "", "y"], "b": "z"})
        )
        .unwrap(),
        "x;y;z"
    );
    assert_eq!(
        value(r#"Join(" ", [givenName], [surname])"#, json!({})),
        Value::Null
    );
    let generated = text(
        r#"Join("", 1000, Replace(ConvertToUTF8Hex([objectId]), , "[a-zA-Z_]*", , "", , ))"#,
        json!({"objectId": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}),
    )
    .unwrap();
    assert!(
        generated.starts_with("1000") && generated.chars().all(|c| c.is_ascii_digit()),
        "{generated}"
    );
    assert_eq!(
        generated,
        format!(
            "1000{}",
            "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
                .bytes()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
                .replace(|c: char| c.is_ascii_alphabetic(), "")
        )
    );
}

#[test]
fn left_len_mid() {
    assert_eq!(t(r#"Left("John Doe", 3)"#), "Joh");
    assert_eq!(t(r#"Left("John Doe", 0)"#), "");
    assert_eq!(t(r#"Left("John Doe", -1)"#), "John Doe");
    assert_eq!(t(r#"Left("Jo", 5)"#), "Jo");
    assert_eq!(t("Left([missing], 3)"), "");
    assert_eq!(value(r#"Len("John Doe")"#, json!({})), Value::Int(8));
    assert_eq!(value("Len(42568)", json!({})), Value::Int(5));
    assert_eq!(value("Len(42568.75)", json!({})), Value::Int(8));
    assert_eq!(value("Len([missing])", json!({})), Value::Int(0));
    assert_eq!(value("Len([n])", json!({"n": 42568.75})), Value::Int(8));
    let alias = "IIF(Len([LastName]) <= 5,  \n\n  Left(Join (\"\",[LastName],[FirstName]),10),  \n  Join(\"\", Mid([LastName],1,9), Mid([FirstName],1,1)) \n\n)";
    assert_eq!(
        text(alias, json!({"FirstName": "John", "LastName": "Smith"})).unwrap(),
        "SmithJohn"
    );
    assert_eq!(
        text(alias, json!({"FirstName": "John", "LastName": "Parker"})).unwrap(),
        "ParkerJ"
    );
    let mid = "Append(Mid([givenName], 1, 3), Mid([surname], 1, 5))";
    assert_eq!(
        text(mid, json!({"givenName": "John", "surname": "Doe"})).unwrap(),
        "JohDoe"
    );
    assert_eq!(t(r#"Mid("abc", 5, 2)"#), "");
    assert!(err(r#"Mid("abc", 0, 2)"#, json!({})).contains("start 0"));
}

#[test]
fn normalize_diacritics() {
    assert_eq!(
        text(
            "NormalizeDiacritics([givenName])",
            json!({"givenName": "Zoë"})
        )
        .unwrap(),
        "Zoe"
    );
    for (input, expected) in [
        ("ß", "ss"),
        ("æ Æ ǣ", "ae AE ae"),
        ("ø Ø ø̄ œ̄", "oe OE oe oe"),
        ("Łódź", "Lodz"),
        ("Ångström", "Angstrom"),
        ("İı", "Ii"),
        ("ǖ ṻ ȫ", "u u o"),
        ("Jéssica Smith", "Jessica Smith"),
        (
            "čćç ďḏ ğ ñň řṟ šșş ťț ůű ýÿ žźż",
            "ccc dd g nn rr sss tt uu yy zzz",
        ),
        ("日本 が", "日本 が"),
    ] {
        assert_eq!(
            t(&format!(r#"NormalizeDiacritics("{input}")"#)),
            expected,
            "{input}"
        );
    }
}

#[test]
fn not_and_the_default_active_mappings() {
    assert_eq!(
        value("Not([IsSoftDeleted])", json!({"IsSoftDeleted": false})),
        Value::Bool(true)
    );
    assert_eq!(
        value("Not([IsSoftDeleted])", json!({"IsSoftDeleted": true})),
        Value::Bool(false)
    );
    assert_eq!(value(r#"Not("True")"#, json!({})), Value::Bool(false));
    assert_eq!(value(r#"Not("False")"#, json!({})), Value::Bool(true));
    assert_eq!(
        text("Not([IsSoftDeleted])", json!({"IsSoftDeleted": "False"})).unwrap(),
        "True"
    );
    let active = r#"Switch([IsSoftDeleted], , "False", "True", "True", "False")"#;
    assert_eq!(
        value(active, json!({"IsSoftDeleted": false})),
        Value::Str("True".into())
    );
    assert_eq!(
        value(active, json!({"IsSoftDeleted": true})),
        Value::Str("False".into())
    );
    assert_eq!(
        value(active, json!({"IsSoftDeleted": "False"})),
        Value::Str("True".into())
    );
    assert_eq!(value(active, json!({})), Value::Null);
}

#[test]
fn now_uses_the_context_clock() {
    assert_eq!(t("Now()"), "7/2/2021 3:33:38 PM");
    assert_eq!(
        value("Now()", json!({})).to_json(),
        json!("7/2/2021 3:33:38 PM")
    );
}

#[test]
fn pcase() {
    assert_eq!(
        text(
            "PCase([firstName])",
            json!({"firstName": "PABLO GONSALVES (SECOND)"})
        )
        .unwrap(),
        "Pablo Gonsalves (Second)"
    );
    assert_eq!(
        text(
            r#"PCase([lastName]," '-")"#,
            json!({"lastName": "PINTO-DE'SILVA"})
        )
        .unwrap(),
        "Pinto-De'Silva"
    );
    assert_eq!(
        text(
            r#"PCase(Join(" ",[firstName],[lastName]))"#,
            json!({"firstName": "GREGORY", "lastName": "JAMES"})
        )
        .unwrap(),
        "Gregory James"
    );
}

#[test]
fn random_string() {
    let a = t("RandomString(6,3,0,0,3)");
    assert_eq!(a.len(), 6);
    assert_eq!(a.chars().filter(char::is_ascii_digit).count(), 3);
    assert_eq!(a.chars().filter(char::is_ascii_lowercase).count(), 3);
    assert_eq!(
        a,
        t("RandomString(6,3,0,0,3)"),
        "deterministic under the same seed"
    );
    let b = t(r#"RandomString(10,2,2,2,1,"?,")"#);
    assert_eq!(b.chars().count(), 10);
    assert!(b.chars().filter(char::is_ascii_digit).count() >= 2);
    assert!(b.chars().filter(char::is_ascii_uppercase).count() >= 2);
    assert!(b.chars().filter(char::is_ascii_lowercase).count() >= 1);
    assert!(b.chars().filter(|c| !c.is_ascii_alphanumeric()).count() >= 2);
    assert!(!b.contains('?') && !b.contains(','));
    assert!(err("RandomString(300,0,0,0,0)", json!({})).contains("maximum of 256"));
    assert!(err("RandomString(2,1,1,1,0)", json!({})).contains("more than the length"));
}

#[test]
fn redact_passes_the_value_but_hides_it_from_the_trace() {
    assert_eq!(
        text(
            "Redact([userPrincipalName])",
            json!({"userPrincipalName": "a@b"})
        )
        .unwrap(),
        "a@b"
    );
    assert_eq!(t(r#"Redact("StringToBeRedacted")"#), "StringToBeRedacted");
    assert_eq!(t("Redact(RandomString(6,3,0,0,3))").len(), 6);
    let attrs = attrs(json!({"secret": "hunter2", "mail": "m@x"}));
    let ctx = Context {
        attrs: &attrs,
        now: now(),
        seed: 0,
        default_domain: None,
    };
    let steps = trace(
        &parse(r#"Join("-", [mail], Redact([secret]))"#).unwrap(),
        &ctx,
    );
    let shown = format!("{steps:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("[Redact]"));
}

#[test]
fn remove_duplicates() {
    assert_eq!(
        value(
            "RemoveDuplicates([proxyAddresses])",
            json!({"proxyAddresses": ["a", "b", "a", "c", "b"]})
        ),
        Value::List(vec![
            Value::Str("a".into()),
            Value::Str("b".into()),
            Value::Str("c".into())
        ])
    );
}

#[test]
fn replace_all_modes() {
    let r = |expr: &str, src| text(expr, src).unwrap();
    assert_eq!(
        r(
            r#"Replace([BusinessTitle],"Product Developer", , , "Software Engineer", , )"#,
            json!({"BusinessTitle": "Product Developer"})
        ),
        "Software Engineer"
    );
    assert_eq!(
        r(
            r#"Replace([UserID],"<username>", , , , , "<username>@contoso.com")"#,
            json!({"UserID": "jsmith"})
        ),
        "jsmith@contoso.com"
    );
    assert_eq!(
        r(
            r#"Replace([telephoneNumber], , "\\+(?<isdCode>\\d* )(?<phoneNumber>\\d{10})", , "${phoneNumber}", , )"#,
            json!({"telephoneNumber": "+91 9998887777"})
        ),
        "9998887777"
    );
    assert_eq!(
        r(
            r#"Replace([mobile], , "[()\\s-]+", , "", , )"#,
            json!({"mobile": "+1 (999) 888-7777"})
        ),
        "+19998887777"
    );
    assert_eq!(
        r(
            r#"Replace([AddressLineData], ,"(?<streetNumber>^\\d*)","streetNumber", "888", , )"#,
            json!({"AddressLineData": "545 Tremont Street"})
        ),
        "888 Tremont Street"
    );
    assert_eq!(
        r(
            r#"Replace([userPrincipalName], , "(?<Suffix>@(.)*)", "Suffix", "", , )"#,
            json!({"userPrincipalName": "jsmith@contoso.com"})
        ),
        "jsmith"
    );
    let fallback = r#"Replace([telephoneNumber], , "\\+(?<isdCode>\\d* )(?<phoneNumber>\\d{10})", "phoneNumber" , , [mobile], )"#;
    assert_eq!(
        r(
            fallback,
            json!({"telephoneNumber": "", "mobile": "+91 8887779999"})
        ),
        "8887779999"
    );
    assert_eq!(
        r(
            fallback,
            json!({"telephoneNumber": "+1 5551234567", "mobile": "+91 8887779999"})
        ),
        "+1 5551234567"
    );
    assert_eq!(
        r(
            r#"Replace([mailNickname], , "[a-zA-Z_]*", , "", , )"#,
            json!({"mailNickname": "john_doe72"})
        ),
        "72"
    );
    assert_eq!(
        r(
            r#"Replace([mail], "@contoso.com", , ,"", ,)"#,
            json!({"mail": "john.doe@contoso.com"})
        ),
        "john.doe"
    );
    // Case-sensitive.
    assert_eq!(
        r(
            r#"Replace([mail], "@CONTOSO.com", , ,"", ,)"#,
            json!({"mail": "john.doe@contoso.com"})
        ),
        "john.doe@contoso.com"
    );
    assert_eq!(
        value(r#"Replace([mail], "@contoso.com", , ,"", ,)"#, json!({})),
        Value::Null
    );
    assert!(
        err(r#"Replace([mail], , "(", , "", , )"#, json!({"mail": "x"}))
            .contains("invalid regexPattern")
    );
}

#[test]
fn select_unique_value_gives_candidates_in_order() {
    let expr = "SelectUniqueValue( \n        Join(\"@\", NormalizeDiacritics(StripSpaces(Join(\".\",  [PreferredFirstName], [PreferredLastName]))), \"contoso.com\"), \n        Join(\"@\", NormalizeDiacritics(StripSpaces(Join(\".\",  Mid([PreferredFirstName], 1, 1), [PreferredLastName]))), \"contoso.com\"),\n        Join(\"@\", NormalizeDiacritics(StripSpaces(Join(\".\",  Mid([PreferredFirstName], 1, 2), [PreferredLastName]))), \"contoso.com\")\n    )";
    let got = outcome(
        expr,
        json!({"PreferredFirstName": "John", "PreferredLastName": "Smith"}),
    )
    .unwrap();
    let s = |v: &str| Value::Str(v.into());
    assert_eq!(
        got,
        Outcome::Unique(vec![
            s("John.Smith@contoso.com"),
            s("J.Smith@contoso.com"),
            s("Jo.Smith@contoso.com")
        ])
    );
    assert!(
        err(r#"Join("", SelectUniqueValue("a", "b"))"#, json!({})).contains("cannot be nested")
    );
}

#[test]
fn split_strip_spaces_case_word() {
    assert_eq!(
        value(
            r#"Split([extensionAttribute5], ",")"#,
            json!({"extensionAttribute5": "PermissionSetOne, PermissionSetTwo"})
        ),
        // The article's sample output shows the second part trimmed; .NET's Split (which Entra
        // uses) keeps the blank, and so do we.
        Value::List(vec![
            Value::Str("PermissionSetOne".into()),
            Value::Str(" PermissionSetTwo".into())
        ])
    );
    assert_eq!(
        value(r#"Count(Split("a,b,c", ","))"#, json!({})),
        Value::Int(3)
    );
    assert_eq!(t(r#"StripSpaces(" a b  c ")"#), "abc");
    let upn = r#"ToLower(Join("@", NormalizeDiacritics(StripSpaces(Join(".",  [PreferredFirstName], [PreferredLastName]))), "contoso.com"))"#;
    assert_eq!(
        text(
            upn,
            json!({"PreferredFirstName": "John", "PreferredLastName": "Smith"})
        )
        .unwrap(),
        "john.smith@contoso.com"
    );
    assert_eq!(t(r#"ToUpper("straße")"#), "STRAßE");
    assert_eq!(t(r#"ToUpper("istanbul", "tr-TR")"#), "İSTANBUL");
    assert_eq!(t(r#"Word("The quick brown fox",3," ")"#), "brown");
    assert_eq!(
        t(r#"Word("This,string!has&many separators",3,",!&#")"#),
        "has"
    );
    assert_eq!(t(r#"Word("a b",5," ")"#), "");
    assert_eq!(t(r#"Word("a b",0," ")"#), "");
    assert_eq!(t(r#"Word([missing],1," ")"#), "");
}

#[test]
fn switch_is_case_sensitive_with_default() {
    let tz = r#"Switch([state], "Australia/Sydney", "NSW", "Australia/Sydney","QLD", "Australia/Brisbane", "SA", "Australia/Adelaide")"#;
    assert_eq!(
        text(tz, json!({"state": "QLD"})).unwrap(),
        "Australia/Brisbane"
    );
    assert_eq!(
        text(tz, json!({"state": "qld"})).unwrap(),
        "Australia/Sydney"
    );
    assert_eq!(text(tz, json!({})).unwrap(), "Australia/Sydney");
    let lowered = r#"Switch(ToLower([statusFlag]), "0", "true", "1", "false", "0")"#;
    assert_eq!(text(lowered, json!({"statusFlag": "TRUE"})).unwrap(), "1");
    let empty_key = r#"Switch([statusFlag], "Default Value", "true", "1", "", "0")"#;
    assert_eq!(text(empty_key, json!({})).unwrap(), "0");
    assert_eq!(
        text(empty_key, json!({"statusFlag": "other"})).unwrap(),
        "Default Value"
    );
    let recommended = r#"IIF([companyName] = "Company A", "A", IIF([companyName] = "Company B", "B", "External"))"#;
    assert_eq!(
        text(recommended, json!({"companyName": "Company B"})).unwrap(),
        "B"
    );
}

#[test]
fn multi_valued_value_where_one_is_expected_is_an_error() {
    let e = err(
        "ToUpper([proxyAddresses])",
        json!({"proxyAddresses": ["a", "b"]}),
    );
    assert!(e.contains("multi-valued"), "{e}");
}

// --- App roles --------------------------------------------------------------------------

fn roles() -> serde_json::Value {
    json!({"appRoleAssignments": [
        {"appRoleId": "00000000-0000-0000-0000-000000000000", "principalType": "User", "principalId": "u1"},
        {"appRoleId": "a1", "principalType": "User", "principalId": "u1", "displayName": "User", "value": "User"},
        {"appRoleId": "a2", "principalType": "Group", "principalId": "g1", "displayName": "Test role", "value": "Test"},
        {"appRoleId": "a3", "principalType": "Group", "principalId": "g2"},
    ]})
}

#[test]
fn app_role_functions_produce_scim_roles() {
    let got = value("AppRoleAssignmentsComplex([appRoleAssignments])", roles()).to_json();
    assert_eq!(
        got,
        json!([
            {"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "User", "value": "User"},
            {"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "Test role", "value": "Test"},
            {"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "a3", "value": "a3"},
        ])
    );
    assert_eq!(
        value(
            "AssertiveAppRoleAssignmentsComplex([appRoleAssignments])",
            roles()
        )
        .to_json(),
        got
    );
    assert_eq!(
        text("SingleAppRoleAssignment([appRoleAssignments])", roles()).unwrap(),
        "User"
    );
    assert_eq!(
        value("AppRoleAssignmentsComplex([appRoleAssignments])", json!({})),
        Value::Null
    );
    assert_eq!(
        value(
            "AssertiveAppRoleAssignmentsComplex([appRoleAssignments])",
            json!({})
        ),
        Value::List(vec![])
    );
    assert_eq!(
        value("SingleAppRoleAssignment([appRoleAssignments])", json!({})),
        Value::Null
    );
}

// --- Values, trace, runtime errors -------------------------------------------------------

#[test]
fn json_round_trip_of_values() {
    let j = json!({"a": [1, "x", true, null, 2.5, {"k": "v"}]});
    assert_eq!(
        Value::from_json(&j).to_json(),
        json!({"a": [1, "x", true, null, "2.5", {"k": "v"}]})
    );
}

#[test]
fn trace_lists_steps_innermost_first() {
    let attrs = attrs(json!({"givenName": "John", "surname": "Doe"}));
    let ctx = Context {
        attrs: &attrs,
        now: now(),
        seed: 0,
        default_domain: None,
    };
    let steps = trace(
        &parse(r#"ToUpper(Join(" ", [givenName], [surname]))"#).unwrap(),
        &ctx,
    );
    let s = |v: &str| Ok(Value::Str(v.into()));
    assert_eq!(
        steps,
        vec![
            ("[givenName]".to_string(), s("John")),
            ("[surname]".to_string(), s("Doe")),
            (
                r#"Join(" ", [givenName], [surname])"#.to_string(),
                s("John Doe")
            ),
            (
                r#"ToUpper(Join(" ", [givenName], [surname]))"#.to_string(),
                s("JOHN DOE")
            ),
        ]
    );
    let steps = trace(
        &parse("Append([givenName], Mid([surname], 0, 1))").unwrap(),
        &ctx,
    );
    let last = steps.last().unwrap();
    assert_eq!(last.0, "Mid([surname], 0, 1)");
    assert!(
        last.1.as_ref().unwrap_err().contains("1:21: Mid: start 0"),
        "{:?}",
        last.1
    );
}

#[test]
fn runtime_errors_carry_positions_and_unknown_functions_fail() {
    let e = err("Append([a],\n  Frob([b]))", json!({}));
    assert!(e.starts_with("2:3: unknown function 'Frob'"), "{e}");
    assert!(err("Left([a])", json!({})).contains("Left expects exactly 2 arguments"));
}

#[test]
fn top_level_literals_and_attributes() {
    assert_eq!(
        t(r#""Company name: \"Contoso\"""#),
        "Company name: \"Contoso\""
    );
    assert_eq!(text("[mail]", json!({"mail": "a@b"})).unwrap(), "a@b");
    let _ = Utc.timestamp_opt(0, 0);
}

#[test]
fn the_deepest_allowed_nesting_evaluates_and_traces() {
    let depth = scimsync_expr::MAX_DEPTH;
    let text_ = format!(
        "{}[a]{}",
        "ToUpper(IIF(1 = 1, ".repeat(depth / 2),
        ", \"x\"))".repeat(depth / 2)
    );
    assert_eq!(text(&text_, json!({"a": "deep"})).unwrap(), "DEEP");
    let attrs = attrs(json!({"a": "deep"}));
    let ctx = Context {
        attrs: &attrs,
        now: now(),
        seed: 0,
        default_domain: None,
    };
    assert_eq!(
        trace(&parse(&text_).unwrap(), &ctx).len(),
        depth / 2 * 3 + 1
    );
}

#[test]
fn another_seed_gives_other_random_values() {
    let attrs = attrs(json!({}));
    let run = |seed: u64, text_: &str| {
        let ctx = Context {
            attrs: &attrs,
            now: now(),
            seed,
            default_domain: None,
        };
        match scimsync_expr::eval(&parse(text_).unwrap(), &ctx).unwrap() {
            Outcome::Value(v) => v,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(run(1, "Guid()"), run(1, "Guid()"));
    assert_ne!(run(1, "Guid()"), run(2, "Guid()"));
    assert_ne!(
        run(1, "RandomString(12,1,1,1,1)"),
        run(2, "RandomString(12,1,1,1,1)")
    );
}
