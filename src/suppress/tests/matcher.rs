//! Matcher syntax, errors, anchoring, missing labels and pseudo-labels.

use super::*;

#[test]
fn parses_all_four_operators_in_braces() {
    let m =
        parse_matchers(r#"{service="checkout-api", env=~"prod|staging", team!="x", tier!~"db.*"}"#)
            .unwrap();
    let got: Vec<_> = m.iter().map(|m| (m.name(), m.op(), m.value())).collect();
    assert_eq!(
        got,
        [
            ("service", MatchOp::Equal, "checkout-api"),
            ("env", MatchOp::Regex, "prod|staging"),
            ("team", MatchOp::NotEqual, "x"),
            ("tier", MatchOp::NotRegex, "db.*"),
        ]
    );
}

#[test]
fn parses_bare_values_whitespace_and_trailing_comma() {
    let m = parse_matchers(" a = b c , d=~ e|f ,").unwrap();
    assert_eq!(m, [one(r#"a="b c""#), one(r#"d=~"e|f""#)]);
    assert_eq!(
        parse_matchers(r#""odd name"="v""#).unwrap()[0].name(),
        "odd name"
    );
}

#[test]
fn parses_escapes_and_keeps_lone_backslashes() {
    assert_eq!(one(r#"m="say \"hi\"\\""#).value(), r#"say "hi"\"#);
    assert_eq!(one(r#"m="a\nb""#).value(), "a\nb");
    let digits = one(r#"code=~"\d+""#);
    assert_eq!(digits.value(), r"\d+");
    assert!(digits.matches_value(Some("503")));
    assert!(!digits.matches_value(Some("5x3")));
}

#[test]
fn empty_lists_are_empty() {
    for s in ["", "   ", "{}", " { } "] {
        assert_eq!(parse_matchers(s).unwrap(), [], "{s:?}");
    }
}

#[test]
fn parse_errors_say_what_and_where() {
    let cases = [
        (r#"{a="b""#, "missing closing `}`", 7),
        ("a", "expected an operator", 2),
        (r#"a == "b""#, "must be quoted", 6),
        (r#"a="b"#, "unterminated quoted string", 3),
        (r#"a="b" c="d""#, "expected `,` between matchers", 7),
        (r#"env=~"prod|(""#, "invalid regex", 1),
        (r#",a="b""#, "expected a matcher before `,`", 1),
        (r#"{a="b"} x"#, "unexpected 'x' after `}`", 9),
        (r#"=x"#, "expected a label name", 1),
        (r#"severity="page""#, "normalised severity", 1),
    ];
    for (input, what, column) in cases {
        let e = parse_matchers(input).expect_err(input);
        assert!(e.message.contains(what), "{input}: {e}");
        assert_eq!(e.column, column, "{input}: {e}");
        assert!(e.to_string().contains(input), "{e}");
    }
}

#[test]
fn display_round_trips() {
    for s in [
        r#"{a="b", "x y"!="q\"uote", c=~"\\d+|x", d!~"", e="tab	\\ back"}"#,
        "a=b",
    ] {
        let parsed = parse_matchers(s).unwrap();
        let again: Vec<String> = parsed.iter().map(Matcher::to_string).collect();
        assert_eq!(
            parse_matchers(&again.join(",")).unwrap(),
            parsed,
            "{again:?}"
        );
    }
}

#[test]
fn regexes_are_fully_anchored() {
    let prod = one(r#"env=~"prod""#);
    assert!(prod.matches_value(Some("prod")));
    assert!(!prod.matches_value(Some("preprod")));
    assert!(!prod.matches_value(Some("production")));
    let alternatives = one(r#"env=~"prod|staging""#);
    assert!(alternatives.matches_value(Some("staging")));
    assert!(!alternatives.matches_value(Some("prod-staging")));
    let not = one(r#"env!~"prod""#);
    assert!(not.matches_value(Some("preprod")));
    assert!(!not.matches_value(Some("prod")));
}

#[test]
fn missing_labels_are_empty_values() {
    let none: Option<&str> = None;
    assert!(one(r#"team="""#).matches_value(none));
    assert!(!one(r#"team!="""#).matches_value(none));
    assert!(one(r#"team!="""#).matches_value(Some("a")));
    assert!(one(r#"team=~".*""#).matches_value(none));
    assert!(!one(r#"team=~".+""#).matches_value(none));
    assert!(one(r#"team!="x""#).matches_value(none));
}

#[test]
fn pseudo_labels_address_event_fields() {
    let mut e = ev(
        "f",
        "2026-01-01T00:00:00Z",
        &[("severity", "page"), ("ci", "lbl-ci")],
    );
    e.severity = Severity::Critical;
    e.source = "alertmanager".into();
    let m = |e: &Event, s: &str, service: Option<&str>| one(s).matches_event(e, service);
    assert!(m(&e, r#"alertname="HighErrorRate""#, None));
    assert!(m(&e, r#"source="alertmanager""#, None));
    // The normalised severity shadows the tool's word.
    assert!(m(&e, r#"severity="critical""#, None));
    assert!(!m(&e, r#"severity=~"page""#, None));
    // CI: the label stands in while the event has none of its own.
    assert!(m(&e, r#"ci="lbl-ci""#, None));
    e.ci = Some("db-1".into());
    assert!(m(&e, r#"ci="db-1""#, None));
    assert!(!m(&e, r#"ci="lbl-ci""#, None));
    // Service: the resolved one, else the label.
    assert!(!m(&e, r#"service="checkout""#, None));
    assert!(m(&e, r#"service="checkout""#, Some("checkout")));
    e.labels.insert("service".into(), "from-label".into());
    assert!(one(r#"service="from-label""#).matches_event(&e, None));
    assert!(one(r#"service="checkout""#).matches_event(&e, Some("checkout")));
}

proptest! {
    #[test]
    fn matcher_parsing_never_panics(s in ".{0,40}") {
        let _ = parse_matchers(&s);
    }

    #[test]
    fn matchers_round_trip_through_display(
        name in "[a-z_][a-z0-9_.]{0,8}|.{1,8}",
        value in ".{0,12}",
    ) {
        prop_assume!(name != "severity");
        let m = Matcher::new(&name, MatchOp::Equal, &value).unwrap();
        let back = parse_matchers(&m.to_string()).unwrap();
        prop_assert_eq!(back, vec![m]);
    }
}
