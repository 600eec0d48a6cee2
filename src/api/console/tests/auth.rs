//! Tokens, sessions and the CSRF check.
use crate::api::console::auth::*;
use crate::config::TokenConfig;
use crate::config::secret::SecretRef;
use crate::config::{HttpConfig, Role};
use axum::http::HeaderMap;
use chrono::Utc;

fn access() -> Access {
    let http = HttpConfig {
        tokens: vec![
            TokenConfig {
                name: "vera".into(),
                role: Role::Viewer,
                token: SecretRef::Inline("viewer-token-0123456789".into()),
            },
            TokenConfig {
                name: "otto".into(),
                role: Role::Operator,
                token: SecretRef::Inline("operator-token-0123456789".into()),
            },
        ],
        restrict_security: true,
        ..HttpConfig::default()
    };
    Access::from_config(&http).unwrap().unwrap()
}

#[test]
fn tokens_name_their_holder_and_role() {
    let a = access();
    let otto = a.by_token("operator-token-0123456789").unwrap();
    assert_eq!((otto.name.as_str(), otto.role), ("otto", Role::Operator));
    assert!(otto.can_act());
    assert!(!a.by_token("viewer-token-0123456789").unwrap().can_act());
    assert_eq!(a.by_token("operator-token-012345678"), None);
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        "bearer viewer-token-0123456789".parse().unwrap(),
    );
    assert_eq!(a.by_bearer(&h).unwrap().name, "vera");
    assert!(!a.sees_security(&otto), "restrict_security hides them");
    assert!(
        Access::from_config(&HttpConfig::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn sessions_are_signed_expire_and_cannot_be_forged() {
    let a = access();
    let now = Utc::now();
    let vera = a.by_token("viewer-token-0123456789").unwrap();
    let cookie = a.session_for(&vera, now).unwrap();
    assert_eq!(a.by_session(&cookie, now), Some(vera));
    let later = now + chrono::Duration::hours(13);
    assert_eq!(a.by_session(&cookie, later), None, "12 h by default");
    // Claiming another name, or a later expiry, breaks the MAC.
    let forged = cookie.replacen("vera", "otto", 1);
    assert_eq!(a.by_session(&forged, now), None);
    let (head, mac) = cookie.rsplit_once('.').unwrap();
    let (name, expiry) = head.split_once('.').unwrap();
    let longer = format!("{name}.{}.{mac}", expiry.parse::<i64>().unwrap() + 1);
    assert_eq!(a.by_session(&longer, now), None);
    assert_eq!(a.by_session("garbage", now), None);
}

#[test]
fn actions_need_the_csrf_cookie_value_and_a_same_origin_request() {
    let token = new_csrf();
    assert_eq!(token.len(), 32);
    let h = HeaderMap::new();
    assert!(csrf_ok(&h, Some(&token), Some(&token)));
    assert!(!csrf_ok(&h, Some(&token), Some(&new_csrf())));
    assert!(!csrf_ok(&h, None, Some(&token)));
    assert!(!csrf_ok(&h, Some(&token), None));
    let mut cross = HeaderMap::new();
    cross.insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert!(!csrf_ok(&cross, Some(&token), Some(&token)));
}
