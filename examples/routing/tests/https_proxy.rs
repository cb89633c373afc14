//! The `proxy` rule to `https://` targets over real TLS on loopback: a target whose
//! certificate chains to a trusted root is reached, its answer passed back; one signed by
//! a CA nobody trusts answers 502 naming the certificate. The trusted CA is made here and
//! trusted the way a user trusts a private CA, through `SSL_CERT_FILE`.
//!
//! A test binary of its own: it sets `SSL_CERT_FILE` for the whole process.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{call, echo, example, serve};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;

/// A certificate authority made for the test.
struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        Ca(CertifiedIssuer::self_signed(params, key).expect("CA certificate"))
    }

    /// A TLS configuration for a server at 127.0.0.1 whose certificate this CA signed.
    fn server_config(&self) -> rustls::ServerConfig {
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("parameters");
        let certificate = params.signed_by(&key, &self.0).expect("server certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![certificate.der().clone()], key)
            .expect("server TLS configuration")
    }
}

/// [`echo`] over TLS on loopback; its address.
async fn tls_echo(config: rustls::ServerConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let echo = echo();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, echo) = (acceptor.clone(), echo.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(echo);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

#[test]
fn https_targets_are_reached_when_their_certificate_is_trusted() {
    let trusted = Ca::new("taskyard test CA");
    let stranger = Ca::new("a CA nobody trusts");
    // Removed when dropped, a failed assertion's unwinding included.
    let dir = tempfile::tempdir().expect("a folder");
    let roots = dir.path().join("ca.pem");
    std::fs::write(&roots, trusted.0.pem()).expect("the CA's file");
    // SAFETY: no other thread runs yet (this binary's only test, before its runtime), so
    // nothing reads the environment while it changes.
    unsafe { std::env::set_var("SSL_CERT_FILE", &roots) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let good = tls_echo(trusted.server_config()).await;
        let bad = tls_echo(stranger.server_config()).await;
        let rules = format!(
            "[route_rules.\"/secure/**\"]\nproxy = \"https://{good}/base/**\"\n\
             [route_rules.\"/stranger/**\"]\nproxy = \"https://{bad}/**\"\n"
        );
        let served = serve(example(&rules)).await;

        let reached = call(
            "POST",
            format!("{}/secure/x/y?q=1", served.base),
            Some("hello"),
            &[],
        )
        .await;
        assert_eq!(reached.status, 200, "{}", reached.text);
        let body = reached.json();
        assert_eq!(body["host"], good.to_string());
        assert_eq!(body["path"], "/base/x/y");
        assert_eq!(body["body"], "hello");
        // The connection is kept: a second request over it.
        let again = call("GET", format!("{}/secure/z", served.base), None, &[]).await;
        assert_eq!(
            (again.status, again.json()["path"].clone()),
            (200, json!("/base/z"))
        );

        let refused = call("GET", format!("{}/stranger/x", served.base), None, &[]).await;
        assert_eq!(refused.status, 502, "{}", refused.text);
        assert!(
            refused.text.contains(&format!("https://{bad}/x"))
                && refused.text.contains("invalid peer certificate")
                && refused.text.contains("SSL_CERT_FILE"),
            "the 502 names the target, the certificate and how to trust its CA: {}",
            refused.text
        );
        served.stop().await;
    });
}
