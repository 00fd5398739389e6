//! Why a KurrentDB server cannot be reached: the client says only "client error (Connect)", whether
//! the port is closed, the name unknown, the certificate not trusted or the server without TLS. When
//! a store cannot be opened, Ducha connects to the first node itself (TCP, then the same TLS
//! handshake the client makes: the system's roots or `tlsCAFile`, the host name) and says which.

use crate::store::StoreError;
use kurrentdb::ClientSettings;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What is wrong with the connection to the first node, or `None` when TCP and TLS both work (the
/// failure is then elsewhere, and the client's own error stands).
pub async fn diagnose(settings: &ClientSettings) -> Option<StoreError> {
    let node = settings.hosts().first()?;
    let addr = format!("{}:{}", node.host, node.port);
    let tcp = match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Some(unreachable(&addr, &e.to_string())),
        Err(_) => return Some(unreachable(&addr, "no answer within 5 s")),
    };
    if !settings.is_secure_mode_enabled() {
        return None;
    }
    let config = match tls_config(settings) {
        Ok(c) => c,
        Err(m) => return Some(StoreError::Io(format!("KurrentDB 的 TLS 设置有误 / the TLS settings are wrong: {m}"))),
    };
    let name = match ServerName::try_from(node.host.clone()) {
        Ok(n) => n,
        Err(e) => return Some(StoreError::Io(format!("invalid host name {:?}: {e}", node.host))),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(PROBE_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(tls_failure(&addr, &e)),
        Err(_) => Some(tls_failure(&addr, &std::io::Error::other("no TLS answer within 5 s"))),
    }
}

fn unreachable(addr: &str, why: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "无法连接 KurrentDB 节点 {addr}（服务器未启动、地址或端口有误？）/ cannot reach the KurrentDB node {addr}: {why}"
    ))
}

/// The client's TLS configuration, as far as the handshake goes: roots and host name verification.
fn tls_config(settings: &ClientSettings) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match settings.tls_ca_file() {
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read tlsCAFile {file}: {e}"))?;
            roots.add_parsable_certificates(certs);
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    if !settings.is_tls_certificate_verification_enabled() {
        config.dangerous().set_certificate_verifier(Arc::new(AcceptAny));
    }
    Ok(config)
}

/// What a failed handshake means to an operator.
fn tls_failure(addr: &str, e: &std::io::Error) -> StoreError {
    let tls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(why)) => StoreError::Unavailable(format!(
            "KurrentDB 节点 {addr} 的 TLS 证书未被信任（{why:?}）：在存储地址中用 tlsCAFile=… 指定签发它的 CA 证书 / \
             the TLS certificate of the KurrentDB node {addr} was refused ({why:?}): name the CA that issued it \
             with tlsCAFile=… in the store URL"
        )),
        Some(rustls::Error::InvalidMessage(_)) => StoreError::Unavailable(format!(
            "KurrentDB 节点 {addr} 没有以 TLS 答复：服务器未启用 TLS 时，在可信网络上于存储地址加 tls=false / the \
             KurrentDB node {addr} did not answer in TLS: if it runs without TLS, add tls=false to the store URL \
             (on a trusted network only)"
        )),
        _ => StoreError::Unavailable(format!(
            "与 KurrentDB 节点 {addr} 的 TLS 握手失败 / the TLS handshake with the KurrentDB node {addr} failed: {e}"
        )),
    }
}

/// `tlsVerifyCert=false`: the handshake's other checks still run.
#[derive(Debug)]
struct AcceptAny;

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    //! Loopback sockets stand for the network situations; none of them pretends to be KurrentDB.
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn settings(url: &str) -> ClientSettings {
        url.parse().unwrap()
    }

    fn message(e: Option<StoreError>) -> String {
        match e {
            Some(StoreError::Unavailable(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let m = message(diagnose(&settings(&format!("kurrentdb://127.0.0.1:{port}?tls=false"))).await);
        assert!(m.contains("无法连接") && m.contains(&format!("127.0.0.1:{port}")), "{m}");
    }

    #[tokio::test]
    async fn a_listening_port_without_tls_is_fine_when_tls_is_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(diagnose(&settings(&format!("kurrentdb://127.0.0.1:{port}?tls=false"))).await.is_none());
    }

    #[tokio::test]
    async fn a_server_answering_without_tls_is_named() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
                let _ = socket.flush().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let m = message(diagnose(&settings(&format!("kurrentdb://localhost:{port}"))).await);
        assert!(m.contains("tls=false"), "{m}");
        server.abort();
    }

    #[test]
    fn an_untrusted_certificate_is_named() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let m = message(Some(tls_failure("db:2113", &e)));
        assert!(m.contains("证书未被信任") && m.contains("UnknownIssuer") && m.contains("tlsCAFile"), "{m}");
        let other = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed");
        assert!(message(Some(tls_failure("db:2113", &other))).contains("TLS 握手失败"));
    }

    #[test]
    fn a_missing_ca_file_is_a_settings_error() {
        let e = tls_config(&settings("kurrentdb://db:2113?tlsCAFile=/nonexistent/ca.pem")).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
