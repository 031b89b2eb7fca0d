//! HTTP(S) GET over one fresh connection (hyper's HTTP/1 client connection, rustls for TLS).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::ProbeError;
use crate::spec::{HttpCheck, ParsedUrl, SpecError};

const UA: &str = concat!("tandem-health/", env!("CARGO_PKG_VERSION"));

pub(super) struct HttpProbe {
    url: ParsedUrl,
    expect_status: u16,
    expect_body: Option<String>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl HttpProbe {
    pub(super) fn new(check_name: &str, check: &HttpCheck) -> Result<HttpProbe, SpecError> {
        let url = ParsedUrl::parse(&check.url).map_err(|reason| SpecError::Invalid {
            check: check_name.to_string(),
            reason,
        })?;
        let tls = if url.https {
            let name = ServerName::try_from(url.host.clone()).map_err(|e| SpecError::Invalid {
                check: check_name.to_string(),
                reason: format!(
                    "http check: {:?} is not a valid TLS server name: {e}",
                    url.host
                ),
            })?;
            let config = client_config(check_name, check)?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(HttpProbe {
            url,
            expect_status: check.expect_status,
            expect_body: check.expect_body.clone(),
            tls,
        })
    }

    pub(super) async fn run(&self) -> Result<String, ProbeError> {
        let tcp = TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(|source| ProbeError::Connect {
                target: self.url.authority.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => self.exchange(tcp).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| ProbeError::Tls {
                        host: self.url.host.clone(),
                        source,
                    })?;
                self.exchange(tls).await
            }
        }
    }

    /// Sends the request and judges the response, driving the connection in this same future
    /// (nothing is spawned, so cancelling the probe closes the connection).
    async fn exchange<S>(&self, io: S) -> Result<String, ProbeError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        let request = Request::get(self.url.path_and_query.as_str())
            .header(HOST, self.url.authority.as_str())
            .header(USER_AGENT, UA)
            .header(CONNECTION, "close")
            .body(Empty::<Bytes>::new())?;
        let work = async {
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            if status != self.expect_status {
                return Err(ProbeError::Status {
                    got: status,
                    expected: self.expect_status,
                });
            }
            let Some(needle) = &self.expect_body else {
                return Ok(format!("HTTP {status}"));
            };
            let mut body = response.into_body();
            let mut seen: Vec<u8> = Vec::new();
            while seen.len() < HttpCheck::MAX_BODY {
                let Some(frame) = body.frame().await else {
                    break;
                };
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                let take = data.len().min(HttpCheck::MAX_BODY - seen.len());
                seen.extend_from_slice(&data[..take]);
                if contains(&seen, needle.as_bytes()) {
                    return Ok(format!("HTTP {status}, body contains {needle:?}"));
                }
            }
            Err(ProbeError::Body {
                status,
                expected: needle.clone(),
                read: seen.len(),
            })
        };
        tokio::pin!(conn);
        tokio::pin!(work);
        let mut conn_done = false;
        loop {
            tokio::select! {
                biased;
                result = &mut work => return result,
                result = &mut conn, if !conn_done => {
                    // The connection ended; the request side sees the rest (a full response
                    // already read, or an error) on its next poll.
                    conn_done = true;
                    result?;
                }
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn client_config(check_name: &str, check: &HttpCheck) -> Result<ClientConfig, SpecError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| SpecError::Tls {
            check: check_name.to_string(),
            source,
        })?;
    let mut config = if !check.tls_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        if let Some(path) = &check.ca_file {
            let ca_err = |source: std::io::Error| SpecError::CaFile {
                check: check_name.to_string(),
                path: path.clone(),
                source,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_err(std::io::Error::other(e.to_string())))?;
            for cert in certs {
                let cert = cert.map_err(|e| ca_err(std::io::Error::other(e.to_string())))?;
                roots.add(cert).map_err(|source| SpecError::Tls {
                    check: check_name.to_string(),
                    source,
                })?;
            }
            if roots.is_empty() {
                return Err(ca_err(std::io::Error::other("no certificate in the file")));
            }
        } else {
            let native = rustls_native_certs::load_native_certs();
            for err in &native.errors {
                tracing::warn!(check = check_name, error = %err, "loading system CA certificates");
            }
            let (added, ignored) = roots.add_parsable_certificates(native.certs);
            tracing::debug!(check = check_name, added, ignored, "system CA certificates");
            if roots.is_empty() {
                tracing::warn!(
                    check = check_name,
                    "no system CA certificate found: this HTTPS check will fail verification \
                     (set ca_file, or tls_verify = false)"
                );
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// `tls_verify = false`: any certificate chain and name are accepted, but the handshake
/// signatures are still verified with the certificate presented.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_search() {
        assert!(contains(b"hello world", b"o w"));
        assert!(!contains(b"hello", b"world"));
        assert!(!contains(b"he", b"hello"));
        assert!(contains(b"x", b""));
    }

    #[test]
    fn missing_ca_file_is_a_spec_error() {
        let mut check = HttpCheck::new("https://127.0.0.1/");
        check.ca_file = Some("/nonexistent/ca.pem".into());
        let err = HttpProbe::new("web", &check).err().expect("must fail");
        assert!(matches!(err, SpecError::CaFile { .. }), "{err}");
    }

    #[test]
    fn https_probe_builds_with_and_without_verification() {
        let check = HttpCheck::new("https://[::1]:8443/health");
        assert!(HttpProbe::new("web", &check).is_ok());
        let check = HttpCheck {
            tls_verify: false,
            ..HttpCheck::new("https://localhost/")
        };
        assert!(HttpProbe::new("web", &check).is_ok());
    }
}
