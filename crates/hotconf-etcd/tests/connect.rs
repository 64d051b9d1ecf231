//! Connecting to a real etcd: plain, with a user and password, and over TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/etcd.rs"]
mod etcd;

use etcd::Etcd;
use hotconf_etcd::{Connection, Error};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn plain_connection_reads_what_etcdctl_wrote() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 1");
    let value = runtime().block_on(async {
        let mut client = Connection::new([etcd.endpoint()]).connect().await.unwrap();
        let response = client.get("/app/a.toml", None).await.unwrap();
        response.kvs()[0].value_str().unwrap().to_owned()
    });
    assert_eq!(value, "x = 1");
}

#[test]
fn authentication_takes_the_right_password_and_refuses_a_wrong_one() {
    if !etcd::available() {
        return;
    }
    let mut etcd = Etcd::start();
    etcd.enable_auth("rootpw");
    etcd.add_user("app", "apppw", "/app/");
    etcd.put("/app/a.toml", "x = 1");
    runtime().block_on(async {
        let wrong = Connection::new([etcd.endpoint()])
            .user("app", "nope")
            .connect()
            .await;
        let Err(error) = wrong else {
            panic!("a wrong password connects");
        };
        assert!(matches!(error, Error::Etcd { .. }), "{error:?}");
        assert!(!format!("{error}").contains("nope"), "{error}");
        let anonymous = Connection::new([etcd.endpoint()]).connect().await.unwrap();
        assert!(anonymous.clone().get("/app/a.toml", None).await.is_err());
        let mut client = Connection::new([etcd.endpoint()])
            .user("app", "apppw")
            .connect()
            .await
            .unwrap();
        let response = client.get("/app/a.toml", None).await.unwrap();
        assert_eq!(response.kvs().len(), 1);
        // The role covers /app/ only.
        assert!(client.get("/other", None).await.is_err());
    });
}

#[cfg(feature = "tls")]
#[test]
fn tls_with_the_ca_and_a_client_certificate() {
    use hotconf_etcd::Tls;
    if !etcd::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = etcd::TlsFiles::generate(dir.path());
    let etcd = Etcd::start_with(etcd::Options {
        tls: Some(files.clone()),
        client_cert_auth: true,
    });
    etcd.put("/app/a.toml", "x = 1");
    runtime().block_on(async {
        let tls = Tls {
            ca: Some(files.ca.clone()),
            cert: Some(files.client_cert.clone()),
            key: Some(files.client_key.clone()),
            domain: None,
        };
        let mut client = Connection::new([etcd.endpoint()])
            .tls(tls)
            .connect()
            .await
            .unwrap();
        let response = client.get("/app/a.toml", None).await.unwrap();
        assert_eq!(response.kvs().len(), 1);
        // Without the client certificate the server refuses the request.
        let tls = Tls {
            ca: Some(files.ca.clone()),
            ..Tls::default()
        };
        let refused = match Connection::new([etcd.endpoint()]).tls(tls).connect().await {
            Err(_) => true,
            Ok(mut client) => client.get("/app/a.toml", None).await.is_err(),
        };
        assert!(refused, "a client without a certificate was served");
    });
}
