//! Secured Kafka end to end: `[kafka.security]` against tansu over real TCP.
//!
//! What tansu 0.6.0 can show, and how:
//! - SASL: `tansu broker --authentication` checks SCRAM-SHA-256/512 passwords against users made
//!   with `tansu user create` (made here before authentication is switched on, on SQLite
//!   storage that survives the restart). Its PLAIN accepts any password, so a wrong password
//!   is shown with SCRAM; it has no OAUTHBEARER.
//! - TLS: tansu 0.6.0 cannot serve it (`--cert` and `--key` are mutually exclusive options, and
//!   its broker never uses the TLS acceptor it builds). So a TLS front made here with rustls
//!   terminates TLS (and checks client certificates for mutual TLS) before tansu, which
//!   advertises the front's address: d2c's librdkafka speaks real TLS to it, with a throwaway
//!   CA and certificates made with rcgen.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate authority: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let pem = p.self_signed(&key).unwrap().pem();
    Ca {
        pem,
        issuer: Issuer::new(p, key),
    }
}

/// A certificate signed by `ca` for `names` (a server's addresses, or a client's name): (cert
/// PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str], client: bool) -> (String, String) {
    let mut p =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A TLS front on `listener` for the plain broker port `backend`: the server certificate, and
/// with `client_ca`, client certificates signed by it required.
async fn tls_front(
    listener: tokio::net::TcpListener,
    backend: u16,
    (cert, key): (String, String),
    client_ca: Option<String>,
) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let config = match client_ca {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    }
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}

/// tansu with SCRAM users `alice` (SCRAM-SHA-256 and -512, password `s3cret`), behind a TLS
/// front with `server` as its certificate (and client certificates of `client_ca` required
/// when given). Returns the broker, the front's `host:port` and the data directory.
async fn secured_broker(
    server: (String, String),
    client_ca: Option<String>,
    authentication: bool,
) -> (Tansu, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (port, front) = (free_port(), free_port());
    let mut plain = Tansu::start_custom(port, port, dir.path(), &[]);
    for mechanism in ["scram256", "scram512"] {
        let out = std::process::Command::new(tansu_bin())
            .args([
                "user",
                "create",
                "alice",
                "s3cret",
                "--mechanism",
                mechanism,
            ])
            .args(["--broker", &format!("tcp://127.0.0.1:{port}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    plain.stop();
    let args: &[&str] = if authentication {
        &["--authentication"]
    } else {
        &[]
    };
    let broker = Tansu::start_custom(port, front, dir.path(), args);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", front))
        .await
        .unwrap();
    tokio::spawn(tls_front(listener, port, server, client_ca));
    (broker, format!("127.0.0.1:{front}"), dir)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The ERROR lines of a d2c log.
fn errors(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" ERROR "))
        .map(str::to_string)
        .collect()
}

/// Polls `/readyz` until its body contains `needle`, or panics after `within`.
fn wait_unready_with(d2c: &D2c, needle: &str, within: Duration) -> String {
    let end = Instant::now() + within;
    loop {
        let (status, body) = http_get(&d2c.http, "/readyz");
        if status == 503 && body.contains(needle) {
            return body;
        }
        assert!(
            Instant::now() < end,
            "/readyz never said `{needle}`: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_over_tls_runs_the_pipeline_and_a_wrong_password_is_one_clear_error() {
    let ca = new_ca("d2c test CA");
    let (broker, front, data) =
        secured_broker(leaf(&ca, &["127.0.0.1", "localhost"], false), None, true).await;
    let ca_file = write(data.path(), "ca.pem", &ca.pem);
    let ca_file = ca_file.to_str().unwrap();
    let env = |password: &'static str| {
        vec![
            ("D2C_KAFKA__PARTITIONS", "3"),
            ("D2C_INGEST__TICK_INTERVAL", "0s"),
            // One event and no ticks: a group wait would never end.
            ("D2C_CORRELATION__GROUP_WAIT", "0s"),
            ("D2C_KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
            ("D2C_KAFKA__SECURITY__CA_FILE", ca_file),
            ("D2C_KAFKA__SECURITY__SASL_MECHANISM", "SCRAM-SHA-512"),
            ("D2C_KAFKA__SECURITY__USERNAME", "alice"),
            (
                "D2C_KAFKA__SECURITY__PASSWORD",
                "env:D2C_TEST_KAFKA_PASSWORD",
            ),
            ("D2C_TEST_KAFKA_PASSWORD", password),
        ]
    };

    // The right password: the whole pipeline works over SASL_SSL.
    let mut d2c = D2c::start_defaults(&front, &env("s3cret"));
    d2c.wait_ready(Duration::from_secs(120));
    let raw = serde_json::json!({"name": "DiskFull", "ci": "host-tls", "severity": "major",
                                  "status": "firing", "time": "2026-11-28T10:00:00Z"});
    let raw = raw.to_string();
    let http = d2c.http.clone();
    let accepted = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&http).unwrap();
        write!(
            s,
            "POST /api/v1/events/native HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{raw}",
            raw.len()
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(accepted.starts_with("HTTP/1.1 202"), "{accepted}");
    let mut incidents = 0.0;
    for _ in 0..300 {
        incidents = d2c
            .metric("d2c_incidents_opened_total{priority=\"P3\"}")
            .unwrap_or(0.0)
            + d2c
                .metric("d2c_incidents_opened_total{priority=\"P4\"}")
                .unwrap_or(0.0)
            + d2c
                .metric("d2c_incidents_opened_total{priority=\"P2\"}")
                .unwrap_or(0.0);
        if incidents >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(incidents, 1.0, "the event became an incident over SASL_SSL");
    assert!(d2c.terminate(Duration::from_secs(40)).success());

    // A wrong password: not ready, with the reason, and one ERROR line, not one per retry.
    let log = data.path().join("wrong-password.log");
    let d2c = D2c::start_defaults_logged(&front, &env("wrong"), Some(&log));
    let body = wait_unready_with(&d2c, "kafka.authentication", Duration::from_secs(60));
    assert!(
        body.contains("the brokers refuse d2c's credentials"),
        "{body}"
    );
    assert!(body.contains("SCRAM-SHA-512 as `alice`"), "{body}");
    std::thread::sleep(Duration::from_secs(20));
    let errors = errors(&log);
    assert_eq!(errors.len(), 1, "one clear error: {errors:#?}");
    assert!(
        errors[0].contains("cannot authenticate to Kafka"),
        "{errors:?}"
    );
    assert_eq!(http_get(&d2c.http, "/readyz").0, 503);
    drop(d2c);
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_broker_certificate_is_one_clear_error() {
    let ca = new_ca("d2c test CA");
    let rogue = new_ca("someone else").pem;
    let (_broker, front, data) =
        secured_broker(leaf(&ca, &["127.0.0.1", "localhost"], false), None, false).await;
    // d2c trusts another CA than the one that signed the broker's certificate.
    let ca_file = write(data.path(), "rogue-ca.pem", &rogue);
    let log = data.path().join("untrusted.log");
    let d2c = D2c::start_defaults_logged(
        &front,
        &[
            ("D2C_KAFKA__PARTITIONS", "3"),
            ("D2C_KAFKA__SECURITY__PROTOCOL", "ssl"),
            ("D2C_KAFKA__SECURITY__CA_FILE", ca_file.to_str().unwrap()),
        ],
        Some(&log),
    );
    let body = wait_unready_with(&d2c, "kafka.tls", Duration::from_secs(60));
    assert!(body.contains("TLS with the brokers fails"), "{body}");
    assert!(body.contains("certificate verify failed"), "{body}");
    std::thread::sleep(Duration::from_secs(20));
    let errors = errors(&log);
    assert_eq!(errors.len(), 1, "one clear error: {errors:#?}");
    assert!(
        errors[0].contains("cannot connect to Kafka over TLS"),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate_gets_ready() {
    let ca = new_ca("d2c test CA");
    let (client_cert, client_key) = leaf(&ca, &["d2c"], true);
    let (_broker, front, data) = secured_broker(
        leaf(&ca, &["127.0.0.1", "localhost"], false),
        Some(ca.pem.clone()),
        false,
    )
    .await;
    let ca_file = write(data.path(), "ca.pem", &ca.pem);
    let cert_file = write(data.path(), "client.pem", &client_cert);
    let key_file = write(data.path(), "client.key", &client_key);
    let mut d2c = D2c::start_defaults(
        &front,
        &[
            ("D2C_KAFKA__PARTITIONS", "3"),
            ("D2C_KAFKA__SECURITY__PROTOCOL", "ssl"),
            ("D2C_KAFKA__SECURITY__CA_FILE", ca_file.to_str().unwrap()),
            (
                "D2C_KAFKA__SECURITY__CERTIFICATE_FILE",
                cert_file.to_str().unwrap(),
            ),
            ("D2C_KAFKA__SECURITY__KEY_FILE", key_file.to_str().unwrap()),
        ],
    );
    d2c.wait_ready(Duration::from_secs(120));
    assert!(wait_owning(&d2c.http, Duration::from_secs(60)));
    assert!(d2c.terminate(Duration::from_secs(40)).success());
}

/// `d2c check` with `env` set: (success, stdout + stderr).
fn check(env: &[(&str, &str)]) -> (bool, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_d2c"));
    cmd.args(["check", "--config", &format!("{root}/config/d2c.toml")])
        .env("D2C_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn d2c_check_validates_the_security_settings() {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca("d2c test CA");
    let (cert, key) = leaf(&ca, &["d2c"], true);
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    let cert_file = write(dir.path(), "client.pem", &cert);
    let key_file = write(dir.path(), "client.key", &key);
    let not_pem = write(dir.path(), "not.pem", "hello\n");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (ca_s, cert_s, key_s, bad_s) = (s(&ca_file), s(&cert_file), s(&key_file), s(&not_pem));
    let base = vec![
        ("D2C_KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
        ("D2C_KAFKA__SECURITY__CA_FILE", ca_s.as_str()),
        ("D2C_KAFKA__SECURITY__CERTIFICATE_FILE", cert_s.as_str()),
        ("D2C_KAFKA__SECURITY__KEY_FILE", key_s.as_str()),
        ("D2C_KAFKA__SECURITY__SASL_MECHANISM", "SCRAM-SHA-256"),
        ("D2C_KAFKA__SECURITY__USERNAME", "d2c"),
        (
            "D2C_KAFKA__SECURITY__PASSWORD",
            "env:D2C_TEST_CHECK_PASSWORD",
        ),
    ];
    let with = |extra: &[(&'static str, &'static str)], over: &[(&'static str, &str)]| {
        let mut env: Vec<(&str, &str)> = base.clone();
        for (k, v) in over {
            env.retain(|(e, _)| e != k);
            env.push((k, v));
        }
        env.extend_from_slice(extra);
        check(&env)
    };
    let password = [("D2C_TEST_CHECK_PASSWORD", "pw")];

    let (ok, text) = with(&password, &[]);
    assert!(ok, "a complete set is accepted: {text}");

    let (ok, text) = with(&[], &[]);
    assert!(!ok);
    assert!(
        text.contains("`kafka.security.password`") && text.contains("D2C_TEST_CHECK_PASSWORD"),
        "{text}"
    );

    let (ok, text) = with(
        &password,
        &[("D2C_KAFKA__SECURITY__CA_FILE", bad_s.as_str())],
    );
    assert!(!ok);
    assert!(text.contains("`kafka.security.ca_file`"), "{text}");

    let (ok, text) = with(
        &password,
        &[("D2C_KAFKA__SECURITY__KEY_FILE", cert_s.as_str())],
    );
    assert!(!ok);
    assert!(
        text.contains("`kafka.security.key_file`") && text.contains("no PEM private key"),
        "{text}"
    );

    let (ok, text) = with(
        &password,
        &[("D2C_KAFKA__SECURITY__CA_FILE", "/nonexistent/ca.pem")],
    );
    assert!(!ok);
    assert!(text.contains("cannot be read"), "{text}");

    let (ok, text) = with(
        &password,
        &[("D2C_KAFKA__SECURITY__SASL_MECHANISM", "GSSAPI")],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("sasl_mechanism"), "{text}");

    // OAUTHBEARER is built in (librdkafka's unsecured JWT, for test set-ups).
    let (ok, text) = check(&[
        ("D2C_KAFKA__SECURITY__PROTOCOL", "sasl_ssl"),
        ("D2C_KAFKA__SECURITY__SASL_MECHANISM", "OAUTHBEARER"),
        ("D2C_KAFKA__SECURITY__OAUTHBEARER_CONFIG", "principal=d2c"),
    ]);
    assert!(ok, "{text}");
}
