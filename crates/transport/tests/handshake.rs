//! Mutual TLS over real quinn endpoints on 127.0.0.1: who may connect, who is refused, and what
//! each side is told.

mod common;

use common::*;
use time::OffsetDateTime;
use yilian_transport::{
    client_endpoint, client_tls_config, connect, peer_identity, AcceptError, ConnectError, Role,
    TlsPem, Tuning,
};

fn client(tls: &TlsPem) -> quinn::Endpoint {
    client_endpoint(tls, &Tuning::default(), false).unwrap()
}

/// The server-side handshake failure message (the relay's log line).
async fn server_failure(task: Served) -> String {
    match task.await.unwrap() {
        Err(e @ AcceptError::Handshake { .. }) => e.to_string(),
        Err(e) => panic!("unexpected accept error: {e}"),
        Ok((id, conn)) => {
            // The client's stack refused after our side completed: the reason arrives as a close.
            let err = conn.closed().await;
            panic!("server accepted {id}; then: {err}")
        }
    }
}

#[tokio::test]
async fn device_and_relay_authenticate_each_other_and_exchange_data() {
    guarded(async {
        let ca = ca("test alliance");
        let (addr, server) = serve_once(&pem(&ca, &ca, &relay_id(), &["localhost", "127.0.0.1"]));
        let endpoint = client(&pem(&ca, &ca, &device_id(), &[]));

        let (conn, relay) = connect(&endpoint, &format!("127.0.0.1:{}", addr.port()))
            .await
            .unwrap();
        assert_eq!(relay, relay_id());
        assert_eq!(peer_identity(&conn).unwrap(), relay_id());

        let (seen_by_server, server_conn) = server.await.unwrap().unwrap();
        assert_eq!(seen_by_server, device_id());
        assert_eq!(peer_identity(&server_conn).unwrap(), device_id());

        // The default tuning reached the connection: yilian's bdp controller.
        assert!(conn
            .congestion_state()
            .into_any()
            .downcast::<yilian_transport::Bdp>()
            .is_ok());

        let echo = tokio::spawn(async move {
            let (mut send, mut recv) = server_conn.accept_bi().await.unwrap();
            let data = recv.read_to_end(1 << 20).await.unwrap();
            send.write_all(b"echo: ").await.unwrap();
            send.write_all(&data).await.unwrap();
            send.finish().unwrap();
            server_conn.closed().await
        });
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let payload = vec![7u8; 300_000];
        send.write_all(&payload).await.unwrap();
        send.finish().unwrap();
        let back = recv.read_to_end(1 << 20).await.unwrap();
        assert_eq!(&back[..6], b"echo: ");
        assert_eq!(&back[6..], &payload[..]);
        conn.close(0u32.into(), b"done");
        let closed = echo.await.unwrap();
        assert!(
            yilian_transport::explain_handshake_failure(&closed).contains("done"),
            "{closed}"
        );
    })
    .await;
}

#[tokio::test]
async fn connect_by_host_name_checks_the_name_on_the_relay_certificate() {
    guarded(async {
        let ca = ca("test alliance");
        let (addr, server) = serve_once(&pem(&ca, &ca, &relay_id(), &["localhost"]));
        let endpoint = client(&pem(&ca, &ca, &reader_id(), &[]));
        let (_conn, relay) = connect(&endpoint, &format!("localhost:{}", addr.port()))
            .await
            .unwrap();
        assert_eq!(relay.role, Role::Relay);
        let (reader, _c) = server.await.unwrap().unwrap();
        assert_eq!(reader, reader_id());
        assert_eq!(reader.department.as_deref(), Some("radiology"));
    })
    .await;
}

#[tokio::test]
async fn relay_certificate_without_the_address_we_dialled_is_refused() {
    guarded(async {
        let ca = ca("test alliance");
        // Valid only for "localhost": dialling the IP must fail the name check.
        let (addr, server) = serve_once(&pem(&ca, &ca, &relay_id(), &["localhost"]));
        let endpoint = client(&pem(&ca, &ca, &device_id(), &[]));
        let err = connect(&endpoint, &format!("127.0.0.1:{}", addr.port()))
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::Connect(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("we refused the relay's certificate"), "{msg}");
        assert!(msg.contains("not valid for the address"), "{msg}");
        let server_msg = server_failure(server).await;
        assert!(
            server_msg.contains("the client refused this relay's certificate"),
            "{server_msg}"
        );
    })
    .await;
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused_with_clear_messages_on_both_sides() {
    guarded(async {
        let alliance = ca("test alliance");
        let stranger = ca("some other alliance");
        let (addr, server) = serve_once(&pem(&alliance, &alliance, &relay_id(), &["127.0.0.1"]));
        // Trusts the alliance CA (so it accepts the relay), but its own cert is from elsewhere.
        let endpoint = client(&pem(&stranger, &alliance, &device_id(), &[]));

        let err = connect(&endpoint, &format!("127.0.0.1:{}", addr.port()))
            .await
            .unwrap_err();
        let ConnectError::Connect(quinn_err) = &err else {
            panic!("expected a connection error, got {err:?}");
        };
        assert!(
            matches!(quinn_err, quinn::ConnectionError::ConnectionClosed(_)),
            "{quinn_err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("the relay refused our certificate"), "{msg}");
        assert!(msg.contains("not issued by the alliance CA"), "{msg}");
        assert!(msg.contains("--cert"), "{msg}");

        let server_msg = server_failure(server).await;
        assert!(
            server_msg.contains("connection from 127.0.0.1:"),
            "{server_msg}"
        );
        assert!(
            server_msg.contains("refused the client's certificate"),
            "{server_msg}"
        );
        assert!(
            server_msg.contains("not issued by the alliance CA"),
            "{server_msg}"
        );
    })
    .await;
}

#[tokio::test]
async fn expired_client_certificate_is_refused_as_expired() {
    guarded(async {
        let ca = ca("test alliance");
        let (addr, server) = serve_once(&pem(&ca, &ca, &relay_id(), &["127.0.0.1"]));
        let now = OffsetDateTime::now_utc();
        let expired = pem_valid(
            &ca,
            &ca,
            &device_id(),
            &[],
            now - time::Duration::days(400),
            now - time::Duration::days(1),
        );
        let endpoint = client(&expired);
        let err = connect(&endpoint, &format!("127.0.0.1:{}", addr.port()))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("the relay refused our certificate"), "{msg}");
        assert!(msg.contains("expired"), "{msg}");

        let server_msg = server_failure(server).await;
        assert!(
            server_msg.contains("refused the client's certificate"),
            "{server_msg}"
        );
        assert!(server_msg.contains("expired"), "{server_msg}");
    })
    .await;
}

#[tokio::test]
async fn relay_certificate_from_another_ca_is_refused_by_the_client() {
    guarded(async {
        let alliance = ca("test alliance");
        let impostor = ca("impostor");
        // The server presents a relay certificate from a CA the client does not trust.
        let (addr, server) = serve_once(&pem(&impostor, &alliance, &relay_id(), &["127.0.0.1"]));
        let endpoint = client(&pem(&alliance, &alliance, &device_id(), &[]));
        let err = connect(&endpoint, &format!("127.0.0.1:{}", addr.port()))
            .await
            .unwrap_err();
        let ConnectError::Connect(quinn_err) = &err else {
            panic!("expected a connection error, got {err:?}");
        };
        assert!(
            matches!(quinn_err, quinn::ConnectionError::TransportError(_)),
            "{quinn_err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("we refused the relay's certificate"), "{msg}");
        assert!(
            msg.contains("not issued by the alliance CA we trust"),
            "{msg}"
        );
        assert!(msg.contains("--ca"), "{msg}");

        let server_msg = server_failure(server).await;
        assert!(
            server_msg.contains("the client refused this relay's certificate"),
            "{server_msg}"
        );
        assert!(server_msg.contains("CA"), "{server_msg}");
    })
    .await;
}

#[tokio::test]
async fn a_server_that_is_not_a_relay_is_refused_by_connect() {
    guarded(async {
        let ca = ca("test alliance");
        // A reader certificate that is otherwise perfectly valid for the address.
        let (addr, server) = serve_once(&pem(&ca, &ca, &reader_id(), &["127.0.0.1"]));
        let endpoint = client(&pem(&ca, &ca, &device_id(), &[]));
        let err = connect(&endpoint, &format!("127.0.0.1:{}", addr.port()))
            .await
            .unwrap_err();
        match &err {
            ConnectError::NotARelay(id) => assert_eq!(id, &reader_id()),
            other => panic!("expected NotARelay, got {other:?}"),
        }
        assert!(err.to_string().contains("not a relay"), "{err}");

        // The server sees the client hang up, with the reason.
        let (_, conn) = server.await.unwrap().unwrap();
        let closed = conn.closed().await;
        let msg = yilian_transport::explain_handshake_failure(&closed);
        assert!(msg.contains("server is not a relay"), "{msg}");
    })
    .await;
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    guarded(async {
        let ca = ca("test alliance");
        let (addr, server) = serve_once(&pem(&ca, &ca, &relay_id(), &["127.0.0.1"]));
        let roots = pem(&ca, &ca, &device_id(), &[]).roots().unwrap();
        let mut tls =
            rustls::ClientConfig::builder_with_provider(yilian_transport::crypto_provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        tls.alpn_protocols = vec![yilian_transport::ALPN.to_vec()];
        let err = raw_connect(tls, addr).await;
        let msg = yilian_transport::explain(&err);
        assert!(
            msg.contains("requires a certificate and we sent none"),
            "{msg}"
        );
        let server_msg = server_failure(server).await;
        assert!(server_msg.contains("without a certificate"), "{server_msg}");
    })
    .await;
}

#[tokio::test]
async fn a_client_without_the_yilian_alpn_is_refused() {
    guarded(async {
        let ca = ca("test alliance");
        let (addr, server) = serve_once(&pem(&ca, &ca, &relay_id(), &["127.0.0.1"]));
        let mut tls = client_tls_config(&pem(&ca, &ca, &device_id(), &[])).unwrap();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let err = raw_connect(tls, addr).await;
        let msg = yilian_transport::explain(&err);
        assert!(msg.contains("protocol"), "{msg}");
        let server_msg = server_failure(server).await;
        assert!(
            server_msg.contains("does not speak yilian/1"),
            "{server_msg}"
        );
    })
    .await;
}

/// Connect with a hand-made rustls config (to exercise what `connect` never sends) and return
/// how the connection ended.
async fn raw_connect(
    tls: rustls::ClientConfig,
    addr: std::net::SocketAddr,
) -> quinn::ConnectionError {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let config = quinn::ClientConfig::new(std::sync::Arc::new(crypto));
    match endpoint
        .connect_with(config, addr, "127.0.0.1")
        .unwrap()
        .await
    {
        Err(e) => e,
        Ok(conn) => conn.closed().await,
    }
}
