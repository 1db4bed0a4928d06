//! Static checks: unknown functions, arity, unknown attributes, placement rules; attribute lists.

use scimsync_expr::{attributes, check, parse, redacts};

fn problems(text: &str) -> Vec<String> {
    let known = |name: &str| {
        [
            "mail",
            "givenName",
            "surname",
            "country",
            "appRoleAssignments",
        ]
        .contains(&name)
    };
    check(&parse(text).unwrap(), &known)
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn a_valid_expression_has_no_problems() {
    assert!(problems(r#"Join(" ", [givenName], [surname])"#).is_empty());
    assert!(problems(r#"Replace([mail], "@contoso.com", , ,"", ,)"#).is_empty());
    assert!(problems(r#"IIF([country]="USA",[country],[mail])"#).is_empty());
    assert!(problems("Guid()").is_empty());
}

#[test]
fn unknown_function_with_case_hint_and_position() {
    assert_eq!(
        problems("Append([mail], join(\"\", [surname]))"),
        ["1:16: unknown function 'join'; function names are case-sensitive, did you mean 'Join'?"]
    );
    assert_eq!(
        problems("Frobnicate([mail])"),
        ["1:1: unknown function 'Frobnicate'"]
    );
}

#[test]
fn a_misspelt_function_gets_a_did_you_mean() {
    assert_eq!(
        problems(r#"Swtich([country], "x", "USA", "us")"#),
        ["1:1: unknown function 'Swtich'; did you mean 'Switch'?"]
    );
    assert_eq!(
        problems(r#"Jion(" ", [mail])"#),
        ["1:1: unknown function 'Jion'; did you mean 'Join'?"]
    );
}

#[test]
fn arity_is_checked_per_function() {
    assert_eq!(
        problems("Left([mail])"),
        ["1:1: Left expects exactly 2 arguments, got 1"]
    );
    assert_eq!(
        problems("Guid(1)"),
        ["1:1: Guid expects exactly 0 arguments, got 1"]
    );
    assert_eq!(
        problems(r#"Join(",")"#),
        ["1:1: Join expects at least 2 arguments, got 1"]
    );
    assert_eq!(
        problems(r#"InStr("a")"#),
        ["1:1: InStr expects 2..4 arguments, got 1"]
    );
    assert_eq!(
        problems("Not([mail], [mail])"),
        ["1:1: Not expects exactly 1 argument, got 2"]
    );
    assert_eq!(
        problems(r#"Switch([mail], "d", "k")"#),
        ["1:1: Switch expects at least 4 arguments, got 3"]
    );
    assert!(problems(r#"Switch([mail], "d", "k", "v", "k2")"#)[0].contains("even number"));
    assert!(problems("Left(, 3)")[0].contains("argument 1 of Left is required"));
}

#[test]
fn unknown_attributes_are_reported_where_they_are() {
    assert_eq!(
        problems("Join(\" \",\n [givenName], [surnam])"),
        ["2:15: unknown source attribute [surnam]"]
    );
}

#[test]
fn placement_rules() {
    assert!(
        problems(r#"Join("", SelectUniqueValue([mail], [surname]))"#)[0]
            .contains("cannot be nested")
    );
    assert!(problems(r#"SelectUniqueValue([mail], [surname])"#).is_empty());
    assert!(
        problems(r#"IIF(IgnoreFlowIfNullOrEmpty([country]),[country],"Other")"#)[0]
            .contains("not a condition")
    );
}

#[test]
fn attributes_are_sorted_and_unique() {
    let e = parse(r#"IIF([country]="USA", Join(" ", [surname], [givenName]), [country])"#).unwrap();
    assert_eq!(attributes(&e), ["country", "givenName", "surname"]);
    assert!(attributes(&parse("Guid()").unwrap()).is_empty());
}

#[test]
fn redact_is_detected_anywhere() {
    assert!(redacts(&parse("Join(\"\", Redact([mail]))").unwrap()));
    assert!(!redacts(&parse("[mail]").unwrap()));
}

#[test]
fn bare_words_are_flagged_unless_they_are_enum_values() {
    assert_eq!(
        problems(r#"Join(" ", givenName)"#),
        [
            r#"1:11: bare word 'givenName' is not a value; write an attribute as [givenName] and text as "givenName""#
        ]
    );
    assert!(problems(r#"InStr("a", "b", 1, vbTextCompare)"#).is_empty());
    assert!(problems("Len(42568.75)").is_empty());
}
